/* bench/bench.h: what every benchmark prints the same way: a monotonic clock, the median and
 * spread of repeated timings, the exact command, and which machine and BLAS kernel ran.
 */
#ifndef CM_BENCH_H
#define CM_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_RUNS 64

static double bench_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static int bench_compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double median, min, max;
} bench_stats;

/* Median, minimum and maximum of x[count] (sorted in place). */
static bench_stats bench_summary(double *x, int count) {
    qsort(x, (size_t)count, sizeof(double), bench_compare);
    bench_stats s;
    s.median = count % 2 ? x[count / 2] : 0.5 * (x[count / 2 - 1] + x[count / 2]);
    s.min = x[0];
    s.max = x[count - 1];
    return s;
}

/* "command: VAR=value ... argv" with the environment variables that change what runs. */
static void bench_print_command(int argc, char **argv) {
    const char *vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_L2_SIZE"};
    printf("command:");
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *value = getenv(vars[i]);
        printf(" %s=%s", vars[i], value ? value : "(unset)");
    }
    for (int k = 0; k < argc; k++) printf(" %s", argv[k]);
    printf("\n");
}

/* The processor's model name (first "model name" line of /proc/cpuinfo) into buffer. */
static void bench_cpu_name(char *buffer, size_t capacity) {
    snprintf(buffer, capacity, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon) snprintf(buffer, capacity, "%s", colon + 2);
            buffer[strcspn(buffer, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

/* The first three fields of /proc/loadavg ("?" if unreadable): a shared machine's other work
 * shows up in every timing, so every report prints it. */
static void bench_load_average(char *buffer, size_t capacity) {
    snprintf(buffer, capacity, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(buffer, capacity, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

#endif
