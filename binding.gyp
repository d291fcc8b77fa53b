{
  "targets": [
    {
      "target_name": "fmnist_native",
      "sources": [
        "native/addon.c",
        "generated/bindings.c",
        "native/team.c",
        "native/gemm.c",
        "native/sgemm.c",
        "native/elementwise.c",
        "native/gather.c",
        "native/dropout.c",
        "native/loss.c",
        "native/optimizers.c",
        "native/convolution.c",
        "native/winograd.c",
        "native/pooling.c",
        "native/batchnorm.c"
      ],
      "include_dirs": ["generated", "native"],
      "libraries": ["-lm", "-lpthread"],
      "cflags": ["-O3", "-march=native", "-fno-math-errno", "-std=c11", "-Wall", "-Wextra"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
