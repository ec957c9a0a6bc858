/* mpi_train.c: the proof of data-parallel training without the CLI (tests/cli_mpi.sh; built by
 * `make MPI=1 mpi`). Trains a method on a built-in law with the trainer over the MPI
 * communicator (comm_mpi.h), or with --single in one process without touching MPI at all, then
 * prints a hash of the whole training state (weights, evaluation weights, target, Adam moments,
 * step) and of the evaluation weights, checks that every process holds the same state, and has
 * rank 0 write the model (cm_model_save) and a checkpoint (cm_checkpoint_save). --resume
 * continues a checkpoint (cm_checkpoint_read / cm_checkpoint_restore_comm) with any process
 * count; --stop-at ends early, so that a run can be cut and resumed. cd distils the exact teacher
 * of a gauss: or gmm: law, as `cm train` does. --hash-model prints the evaluation-weight hash of
 * a model file (e.g. one written by `cm train`). It is a test program: usage errors exit 2,
 * failures 1 (after MPI_Abort when other processes may be waiting in a collective).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/checkpoint.h"
#include "cm/comm.h"
#include "cm/comm_mpi.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/law.h"
#include "cm/parallel.h"
#include "cm/train.h"

/* OpenBLAS's thread count changes the bits of its larger GEMMs: pinned to the pool's, as cm's
 * CLI does, so that every process computes a row block the same way. */
extern void openblas_set_num_threads(int threads);

typedef struct {
    int single;
    const char *method, *data, *out, *checkpoint, *resume, *hash_model;
    size_t steps, batch, blocks, stop_at, threads;
    uint64_t seed;
    const char *sets[32];
    size_t set_count;
} options;

typedef struct {
    const cm_comm *comm;
    cm_comm *mpi; /* owned, NULL with --single */
    cm_data *data;
    cm_trainer *trainer;
    cm_law *law, *law_standardised;
    cm_denoiser teacher;
    int has_teacher;
} run;

static uint64_t fnv1a(uint64_t hash, const void *bytes, size_t size) {
    const unsigned char *p = bytes;
    for (size_t i = 0; i < size; i++) hash = (hash ^ p[i]) * 0x100000001b3ULL;
    return hash;
}

#define FNV_START 0xcbf29ce484222325ULL

static uint64_t state_hash(cm_trainer *trainer) {
    cm_trainer_state s;
    cm_trainer_get_state(&s, trainer);
    size_t bytes = s.param_count * sizeof(float);
    uint64_t h = fnv1a(FNV_START, &s.step, sizeof s.step);
    h = fnv1a(h, s.params, bytes);
    h = fnv1a(h, s.ema, bytes);
    if (s.target) h = fnv1a(h, s.target, bytes);
    h = fnv1a(h, s.adam_m, bytes);
    return fnv1a(h, s.adam_v, bytes);
}

static uint64_t model_hash(const cm_model *model) {
    return fnv1a(FNV_START, model->params, cm_model_param_count(model) * sizeof(float));
}

static int usage(const char *message) {
    fprintf(stderr, "mpi_train: %s\nusage: mpi_train [--single] --method M [--data LAW] [--steps N] "
            "[--batch B] [--blocks K] [--seed S] [--threads T] [--set KEY=VALUE]... "
            "[--stop-at K] [--out MODEL] [--checkpoint FILE] [--resume CHECKPOINT]\n"
            "       mpi_train --hash-model MODEL\n", message);
    return 2;
}

static int parse_size(size_t *out, const char *text) {
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0' || *text == '-') return 0;
    *out = (size_t)value;
    return 1;
}

static int parse_options(options *o, int argc, char **argv) {
    *o = (options){.method = "ict", .data = "gauss:d=4", .steps = 40, .batch = 64, .blocks = 4,
                   .seed = 1, .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n = 0;
        if (!strcmp(a, "--single")) { o->single = 1; continue; }
        if (!v) return usage("an option lacks its value");
        i++;
        if (!strcmp(a, "--method")) o->method = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--checkpoint")) o->checkpoint = v;
        else if (!strcmp(a, "--resume")) o->resume = v;
        else if (!strcmp(a, "--hash-model")) o->hash_model = v;
        else if (!strcmp(a, "--set") && o->set_count < 32) o->sets[o->set_count++] = v;
        else if (!parse_size(&n, v)) return usage("a number option has a bad value");
        else if (!strcmp(a, "--steps")) o->steps = n;
        else if (!strcmp(a, "--batch")) o->batch = n;
        else if (!strcmp(a, "--blocks")) o->blocks = n;
        else if (!strcmp(a, "--seed")) o->seed = n;
        else if (!strcmp(a, "--stop-at")) o->stop_at = n;
        else if (!strcmp(a, "--threads")) o->threads = n;
        else return usage("unknown option");
    }
    return 0;
}

/* --set KEY=VALUE: a field of the run, optimiser, method or network type's table. */
static cm_status apply_set(cm_train_config *c, const char *text) {
    char key[64];
    const char *eq = strchr(text, '=');
    if (!eq || (size_t)(eq - text) >= sizeof key)
        return cm_error_set(CM_ERR_INVALID, "--set %s: not KEY=VALUE", text);
    memcpy(key, text, (size_t)(eq - text));
    key[eq - text] = '\0';
    size_t counts[4];
    const cm_field *tables[4] = {cm_train_config_fields(&counts[0]),
                                 cm_optimizer_config_fields(&counts[1]),
                                 cm_method_config_fields(&counts[2]), c->network.type->options};
    void *bases[4] = {c, &c->optimizer, &c->method, cm_network_options(&c->network)};
    counts[3] = c->network.type->option_count;
    for (int t = 0; t < 4; t++)
        for (size_t f = 0; f < counts[t]; f++)
            if (!strcmp(tables[t][f].key, key)) return cm_field_parse(&tables[t][f], bases[t], eq + 1);
    return cm_error_set(CM_ERR_INVALID, "--set %s: no setting %s", text, key);
}

static cm_status make_config(cm_train_config *out, const options *o, const cm_data *data) {
    cm_method method;
    CM_TRY(cm_method_parse(&method, o->method));
    *out = cm_train_config_default(method, cm_data_dim(data));
    out->steps = o->steps;
    out->batch = o->batch;
    out->blocks = o->blocks;
    out->seed = o->seed;
    cm_data_image_shape(data, &out->network.image_channels, &out->network.image_height,
                        &out->network.image_width);
    for (size_t i = 0; i < o->set_count; i++) CM_TRY(apply_set(out, o->sets[i]));
    return cm_train_config_check(out);
}

/* cd, cd2: the exact denoiser of the law, in the trainer's standardised units (as `cm train`). */
static cm_status attach_teacher(run *r) {
    const cm_train_config *c = &cm_trainer_model(r->trainer)->config;
    if (!cm_method_is_distillation(c->method.kind)) return CM_OK;
    CM_TRY(cm_law_from_data(&r->law, r->data));
    const cm_transform *t = &cm_trainer_model(r->trainer)->transform;
    CM_TRY(cm_law_standardise(&r->law_standardised, r->law, t->shift, t->scale));
    CM_TRY(cm_denoiser_from_law(&r->teacher, r->law_standardised));
    r->has_teacher = 1;
    return cm_trainer_set_teacher(r->trainer, &r->teacher, NULL);
}

static cm_status start(run *r, const options *o) {
    if (o->resume) {
        cm_checkpoint *ck = NULL;
        cm_status status = cm_checkpoint_read(&ck, o->resume);
        if (status == CM_OK) status = cm_data_open(&r->data, cm_checkpoint_data_source(ck));
        if (status == CM_OK) status = cm_checkpoint_restore_comm(&r->trainer, ck, r->data, r->comm);
        cm_checkpoint_free(ck);
        CM_TRY(status);
    } else {
        cm_train_config config;
        CM_TRY(cm_data_open(&r->data, o->data));
        CM_TRY(make_config(&config, o, r->data));
        CM_TRY(cm_trainer_init_comm(&r->trainer, &config, r->data, r->comm));
    }
    return attach_teacher(r);
}

static cm_status train(run *r, const options *o) {
    CM_TRY(start(r, o));
    size_t steps = cm_trainer_model(r->trainer)->config.steps;
    size_t stop = o->stop_at && o->stop_at < steps ? o->stop_at : steps;
    while (cm_trainer_steps_done(r->trainer) < stop) CM_TRY(cm_trainer_step(r->trainer, NULL));
    if (r->comm->rank != 0) return CM_OK;
    if (o->out) CM_TRY(cm_model_save(cm_trainer_model(r->trainer), o->out));
    if (o->checkpoint) CM_TRY(cm_checkpoint_save(o->checkpoint, r->trainer, NULL, NULL, 0));
    return CM_OK;
}

static void run_free(run *r) {
    cm_trainer_free(r->trainer);
    if (r->has_teacher) cm_denoiser_free(&r->teacher);
    cm_law_free(r->law_standardised);
    cm_law_free(r->law);
    cm_data_free(r->data);
    cm_comm_mpi_free(r->mpi);
}

static int hash_model(const char *path) {
    cm_model model;
    if (cm_model_load(&model, path) != CM_OK) {
        fprintf(stderr, "mpi_train: %s\n", cm_error_detail());
        return 1;
    }
    printf("weights %016llx\n", (unsigned long long)model_hash(&model));
    cm_model_free(&model);
    return 0;
}

/* Every process's state hash, gathered on rank 0: 1 when they all equal rank 0's. */
static int ranks_agree(const run *r, uint64_t hash) {
    if (r->comm->size == 1) return 1;
    uint64_t *all = malloc(r->comm->size * sizeof *all);
    if (!all) return 0;
    MPI_Gather(&hash, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    int agree = 1;
    for (size_t p = 0; r->comm->rank == 0 && p < r->comm->size; p++) agree &= all[p] == hash;
    free(all);
    return agree;
}

int main(int argc, char **argv) {
    options o;
    int result = parse_options(&o, argc, argv);
    if (result) return result;
    if (o.hash_model) return hash_model(o.hash_model);
    if (o.threads < 1 || cm_parallel_set_threads(o.threads) != CM_OK) return usage("bad --threads");
    openblas_set_num_threads((int)o.threads);
    run r = {.comm = cm_comm_single()};
    if (!o.single) {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        if (cm_comm_mpi_create(&r.mpi, MPI_COMM_WORLD) != CM_OK) {
            fprintf(stderr, "mpi_train: %s\n", cm_error_detail());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        r.comm = r.mpi;
    }
    cm_status status = train(&r, &o);
    if (status != CM_OK) {
        fprintf(stderr, "mpi_train (rank %zu of %zu): %s: %s\n", r.comm->rank, r.comm->size,
                cm_status_name(status), cm_error_detail());
        if (!o.single) MPI_Abort(MPI_COMM_WORLD, 1); /* the others may wait in a collective */
        run_free(&r);
        return 1;
    }
    uint64_t state = state_hash(r.trainer);
    int agree = o.single || ranks_agree(&r, state);
    if (r.comm->rank == 0)
        printf("processes %zu steps %zu state %016llx weights %016llx%s\n", r.comm->size,
               cm_trainer_steps_done(r.trainer), (unsigned long long)state,
               (unsigned long long)model_hash(cm_trainer_model(r.trainer)),
               agree ? "" : " (processes differ)");
    run_free(&r);
    if (!o.single) MPI_Finalize();
    return agree ? 0 : 1;
}
