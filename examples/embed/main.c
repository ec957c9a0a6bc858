/* examples/embed/main.c: two models exported by `cm export` (prefixes moons and rings) in one
 * program: 1000 samples of each, moons in one step with its static workspace, rings in two steps
 * ([CM] Algorithm 1 at sigma 10, then 0.8) with a workspace of ours, printed as CSV. Build and
 * run: examples/embed/README.md. */
#include <stdio.h>

#include "moons.h"
#include "rings.h"

#define N 1000

int main(void) {
    static float moons[N * MOONS_DIM], rings[N * RINGS_DIM];
    static float workspace[RINGS_WORKSPACE_BYTES / sizeof(float)]; /* aligned for float */
    const double levels[2] = {10.0, 0.8};
    if (moons_sample(moons, N, 1) != MOONS_OK ||
        rings_sample_levels(rings, N, 2, levels, 2, workspace) != RINGS_OK) {
        fprintf(stderr, "embed: sampling failed\n");
        return 1;
    }
    printf("model,x,y\n");
    for (int i = 0; i < N; i++) printf("moons,%.9g,%.9g\n", moons[2 * i], moons[2 * i + 1]);
    for (int i = 0; i < N; i++) printf("rings,%.9g,%.9g\n", rings[2 * i], rings[2 * i + 1]);
    return 0;
}
