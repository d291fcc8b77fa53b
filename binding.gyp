{
  "targets": [
    {
      "target_name": "fmnist_native",
      "sources": ["native/fmnist_native.c"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/openblas"],
      "libraries": ["-lopenblas", "-lm", "-lpthread"],
      "cflags": ["-O3", "-march=native", "-fno-math-errno", "-std=c11", "-Wall", "-Wextra"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
