// The thread team that the kernels split their work over (see the top of team.c for why the
// addon runs its own), and the per-part partial sums of splits that must add up in a fixed order.
#ifndef FMNIST_TEAM_H
#define FMNIST_TEAM_H

#include <stddef.h>

// The addon's files share these names among themselves only: hidden, the addon exports nothing
// but its module, and a name that Node or a library loaded before it also defines cannot take
// the place of the addon's own.
#pragma GCC visibility push(hidden)

#define MAX_THREADS 64

// Threads in the team, the caller included.
int team_size(void);

// Starts `size` threads (the caller and size - 1 workers) after stopping any running ones;
// returns 0 when a worker cannot be started (the team then has the threads that did start).
int team_start(int size);
void team_stop(void);

typedef void (*Task)(void *context, int part, int parts);

// Runs task(context, p, parts) for p = 0 .. parts-1 (parts <= team size), p = 0 here.
void parallel(Task task, void *context, int parts);

// The range [*begin, *end) of part `part` when `count` items are split into `parts` near-equal parts.
void split_range(int count, int part, int parts, int *begin, int *end);

// Parts worth using for `work` multiply-adds (or element operations), at least
// `minimum_per_part` each, and at most the team's size.
int parts_for(double work, double minimum_per_part);

// A loop over [0, count) split into near-equal ranges over the team: body(args, begin, end).
typedef void (*RangeBody)(void *args, int begin, int end);

// Splits when the loop touches at least 64K floats per part (smaller loops are faster alone).
void parallel_range(RangeBody body, void *args, int count, double floats_per_item);

// The same with at least `floats_per_part` floats per part.
void parallel_range_over(RangeBody body, void *args, int count, double floats_per_item, double floats_per_part);

// The partial sums of parts 1 .. parts-1 of a split whose part 0 sums into the result itself,
// one after another, `size` floats each; grown by reserve_partials, which returns 0 when out of memory.
extern float *partials;
int reserve_partials(int parts, size_t size);

// dst[0..size) += each of `count` partial sums placed `size` floats apart from `sums`, in order.
void add_partial_sums(float *restrict dst, const float *restrict sums, int count, size_t size);

#pragma GCC visibility pop

#endif
