// The thread team: fork-join over `parts` parts, part 0 on the calling thread.
//
// Threads: each matrix product runs on one thread (sgemm.c), and the addon splits the work over
// a small team of threads (the calling thread and `threads - 1` workers): matrix products by
// rows of the result, convolutions by images (im2col + sgemm per chunk of images, on each
// thread's own column buffer), the weight gradient into per-thread sums. Splitting the batch
// keeps im2col and col2im parallel too; when the products were OpenBLAS's, its own threads left
// them serial and split the thin convolution products poorly (2 threads were no faster than 1),
// and OpenMP's threads beside OpenBLAS's were worse still: their idle threads spun against each
// other on a 2-vCPU machine. The team's idle workers spin only briefly, then sleep.
#include "team.h"

#include "sgemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// Spins of an idle worker before it sleeps: long enough to catch the next kernel of the same
// layer, short enough not to steal the other core from JavaScript for long.
#define SPIN_LIMIT 20000

static struct {
  int size;  // threads in the team, the caller included
  pthread_t workers[MAX_THREADS];
  pthread_mutex_t lock;
  pthread_cond_t wake, finished;
  atomic_uint generation;  // bumped for each task; workers wait for it to change
  atomic_int pending;      // workers still running the current task
  Task task;
  void *context;
  int parts;
  int stopping;
  // The generation when the workers were started: what a new worker has "seen". A worker that
  // read team.generation itself once running could miss a task handed out before that.
  unsigned started_at;
} team = {1, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, NULL, 0, 0, 0};

int team_size(void) { return team.size; }

static void *team_worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned seen = team.started_at;
  for (;;) {
    int spins = 0;
    while (atomic_load_explicit(&team.generation, memory_order_acquire) == seen && spins < SPIN_LIMIT) {
      CPU_RELAX();
      spins++;
    }
    pthread_mutex_lock(&team.lock);
    while (atomic_load(&team.generation) == seen && !team.stopping) pthread_cond_wait(&team.wake, &team.lock);
    pthread_mutex_unlock(&team.lock);
    if (team.stopping) {
      sgemm_release_buffers();
      return NULL;
    }
    seen = atomic_load(&team.generation);
    if (id < team.parts) team.task(team.context, id, team.parts);
    if (atomic_fetch_sub(&team.pending, 1) == 1) {
      pthread_mutex_lock(&team.lock);
      pthread_cond_signal(&team.finished);
      pthread_mutex_unlock(&team.lock);
    }
  }
}

void team_stop(void) {
  if (team.size <= 1) return;
  pthread_mutex_lock(&team.lock);
  team.stopping = 1;
  pthread_cond_broadcast(&team.wake);
  pthread_mutex_unlock(&team.lock);
  for (int i = 1; i < team.size; i++) pthread_join(team.workers[i], NULL);
  team.stopping = 0;
  team.size = 1;
}

int team_start(int size) {
  team_stop();
  if (size > MAX_THREADS) size = MAX_THREADS;
  team.started_at = atomic_load(&team.generation);
  for (int i = 1; i < size; i++) {
    if (pthread_create(&team.workers[i], NULL, team_worker, (void *)(intptr_t)i) != 0) {
      team.size = i;
      return 0;
    }
    team.size = i + 1;
  }
  return 1;
}

void parallel(Task task, void *context, int parts) {
  if (parts > team.size) parts = team.size;
  if (parts <= 1) {
    task(context, 0, 1);
    return;
  }
  team.task = task;
  team.context = context;
  team.parts = parts;
  atomic_store(&team.pending, team.size - 1);
  pthread_mutex_lock(&team.lock);
  atomic_fetch_add_explicit(&team.generation, 1, memory_order_release);
  pthread_cond_broadcast(&team.wake);
  pthread_mutex_unlock(&team.lock);
  task(context, 0, parts);
  // Wait for the workers: spin first (they usually finish together), then sleep.
  for (int spins = 0; atomic_load_explicit(&team.pending, memory_order_acquire) > 0 && spins < SPIN_LIMIT; spins++) CPU_RELAX();
  pthread_mutex_lock(&team.lock);
  while (atomic_load(&team.pending) > 0) pthread_cond_wait(&team.finished, &team.lock);
  pthread_mutex_unlock(&team.lock);
}

void split_range(int count, int part, int parts, int *begin, int *end) {
  *begin = (int)((long long)count * part / parts);
  *end = (int)((long long)count * (part + 1) / parts);
}

// A part below about 20 microseconds of work costs more to hand over than it saves.
int parts_for(double work, double minimum_per_part) {
  int parts = (int)(work / minimum_per_part);
  if (parts < 1) parts = 1;
  return parts < team.size ? parts : team.size;
}

typedef struct {
  RangeBody body;
  void *args;
  int count;
} RangeTask;

static void range_part(void *context, int part, int parts) {
  RangeTask *t = context;
  int begin, end;
  split_range(t->count, part, parts, &begin, &end);
  if (end > begin) t->body(t->args, begin, end);
}

void parallel_range_over(RangeBody body, void *args, int count, double floats_per_item, double floats_per_part) {
  RangeTask t = {body, args, count};
  parallel(range_part, &t, parts_for(count * floats_per_item, floats_per_part));
}

void parallel_range(RangeBody body, void *args, int count, double floats_per_item) { parallel_range_over(body, args, count, floats_per_item, 1 << 16); }

float *partials = NULL;
static size_t partials_floats = 0;

int reserve_partials(int parts, size_t size) {
  size_t floats = (size_t)(parts - 1) * size;
  if (floats > partials_floats) {
    free(partials);
    partials = malloc(sizeof(float) * floats);
    partials_floats = partials ? floats : 0;
    if (!partials) return 0;
  }
  return 1;
}

// Added in part order, so that a run repeats exactly for a given thread count.
void add_partial_sums(float *restrict dst, const float *restrict sums, int count, size_t size) {
  for (int p = 0; p < count; p++)
    for (size_t i = 0; i < size; i++) dst[i] += sums[(size_t)p * size + i];
}
