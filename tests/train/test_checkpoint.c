/* test_checkpoint.c: checkpoints and exact resume: a run stopped, saved, read back and restored
 * continues to the bit as the uninterrupted run (every method, EMA on and off); a failed
 * (non-finite) step leaves a state that saves and resumes; a checkpoint is also a model file; the data of a resumed run must be the run's; damaged checkpoints (every
 * truncation, each metadata value, tensor and value made wrong) are refused without a leak; run
 * directories keep the newest K; and every allocation of the main constructors failing in turn
 * gives CM_ERR_NOMEM and no leak (cJSON allocates outside cm_malloc and is not counted).
 */
#include "cm/checkpoint.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "test.h"

#define STEPS 40            /* length of the small runs */
#define STOP_AT 17          /* where the interrupted run is saved */
#define OOM_ATTEMPTS_MAX 2000 /* allocations a constructor may make before it must succeed */

static char directory[256];

/* Delete `path` and everything below it (the temporary directory, at exit). */
static void remove_tree(const char *path) {
    DIR *listing = opendir(path);
    struct dirent *entry;
    while (listing && (entry = readdir(listing)) != NULL) {
        char child[1024];
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        struct stat info;
        if (lstat(child, &info) == 0 && S_ISDIR(info.st_mode)) remove_tree(child);
        else unlink(child);
    }
    if (listing) closedir(listing);
    rmdir(path);
}

static void remove_directory(void) { remove_tree(directory); }

/* DIRECTORY/name, in a directory made once per run of the tests (removed at exit). Each name
 * has its own buffer for the run of the tests (names are few). */
#define TEMP_PATHS_MAX 32
static const char *temp_path(const char *name) {
    static char paths[TEMP_PATHS_MAX][512];
    static int used = 0;
    if (!directory[0]) {
        snprintf(directory, sizeof directory, "/tmp/cm_test_checkpoint_XXXXXX");
        if (mkdtemp(directory)) atexit(remove_directory);
        else directory[0] = '\0';
    }
    char candidate[512];
    snprintf(candidate, sizeof candidate, "%s/%s", directory, name);
    for (int i = 0; i < used; i++)
        if (strcmp(paths[i], candidate) == 0) return paths[i];
    if (used == TEMP_PATHS_MAX) return "/nonexistent/too-many-temp-paths";
    snprintf(paths[used], sizeof paths[0], "%s", candidate);
    return paths[used++];
}

static cm_train_config small_config(cm_method method) {
    cm_train_config c = cm_train_config_default(method, 2);
    CM_TEST_MLP(c)->width = 16;
    CM_TEST_MLP(c)->depth = 2;
    c.batch = 32;
    c.steps = STEPS;
    c.method.chain_T = 11;
    c.seed = 11;
    return c;
}

typedef struct {
    const char *name;
    cm_train_config config;
} variant;

/* Every method and teacher, the adaptive CT target, and the EMA switched off. */
static size_t variants(variant *out) {
    size_t n = 0;
    out[n++] = (variant){"ict", small_config(CM_METHOD_ICT)};
    out[n++] = (variant){"ct", small_config(CM_METHOD_CT)};
    out[n] = (variant){"ct adaptive target", small_config(CM_METHOD_CT)};
    out[n++].config.method.ct_target_ema = -1;
    out[n++] = (variant){"lhw online", small_config(CM_METHOD_LHW)};
    out[n] = (variant){"lhw sequential", small_config(CM_METHOD_LHW)};
    out[n++].config.method.teacher = CM_TEACHER_SEQUENTIAL;
    out[n] = (variant){"ict no ema", small_config(CM_METHOD_ICT)};
    out[n++].config.optimizer.ema_decay = 0;
    return n;
}

static void run_steps(cm_trainer *trainer, size_t steps) {
    for (size_t k = 0; k < steps; k++) CM_CHECK_OK(cm_trainer_step(trainer, NULL));
}

/* Bit equality of two trainers' whole state. */
static void check_same_state(cm_trainer *a, cm_trainer *b, const char *what) {
    cm_trainer_state x, y;
    cm_trainer_get_state(&x, a);
    cm_trainer_get_state(&y, b);
    size_t bytes = x.param_count * sizeof(float);
    CM_CHECK(x.step == y.step && x.stage == y.stage && x.adam_step == y.adam_step,
             "%s: counters (%zu, %zu, %zu) vs (%zu, %zu, %zu)", what, x.step, x.stage, x.adam_step,
             y.step, y.stage, y.adam_step);
    CM_CHECK(memcmp(x.params, y.params, bytes) == 0, "%s: weights differ", what);
    CM_CHECK(memcmp(x.ema, y.ema, bytes) == 0, "%s: EMA differs", what);
    CM_CHECK(memcmp(x.adam_m, y.adam_m, bytes) == 0 && memcmp(x.adam_v, y.adam_v, bytes) == 0,
             "%s: Adam moments differ", what);
    CM_CHECK((x.target == NULL) == (y.target == NULL) &&
                 (!x.target || memcmp(x.target, y.target, bytes) == 0),
             "%s: target differs", what);
    CM_CHECK(memcmp(x.streams, y.streams, sizeof x.streams) == 0, "%s: streams differ", what);
    CM_CHECK(memcmp(x.transform->shift, y.transform->shift, x.transform->dim * sizeof(double)) == 0 &&
                 memcmp(x.transform->scale, y.transform->scale,
                        x.transform->dim * sizeof(double)) == 0,
             "%s: transform differs", what);
}

/* Train STOP_AT steps, save, read, restore, finish: the same state as STEPS uninterrupted. */
static void test_resume_is_bit_exact(void) {
    variant list[8];
    size_t count = variants(list);
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "moons"));
    for (size_t v = 0; v < count; v++) {
        cm_trainer *whole = NULL, *first = NULL, *second = NULL;
        cm_checkpoint *ck = NULL;
        const char *path = temp_path("resume.safetensors");
        CM_CHECK_OK(cm_trainer_init(&whole, &list[v].config, data));
        CM_CHECK_OK(cm_trainer_init(&first, &list[v].config, data));
        if (!whole || !first) break;
        run_steps(whole, STEPS);
        run_steps(first, STOP_AT);
        CM_CHECK_OK(cm_checkpoint_save(path, first, NULL, NULL, 0));
        CM_CHECK_OK(cm_checkpoint_read(&ck, path));
        if (ck) {
            CM_CHECK(cm_checkpoint_step(ck) == STOP_AT, "%s: step %zu", list[v].name,
                     cm_checkpoint_step(ck));
            CM_CHECK_OK(cm_checkpoint_restore(&second, ck, data));
        }
        if (second) {
            check_same_state(first, second, list[v].name);
            run_steps(second, STEPS - STOP_AT);
            check_same_state(whole, second, list[v].name);
        }
        cm_checkpoint_free(ck);
        cm_trainer_free(whole);
        cm_trainer_free(first);
        cm_trainer_free(second);
    }
    cm_data_free(data);
}

/* A step with a non-finite loss changes nothing, even where the sequential [LHW] teacher moves
 * to a new stage (every step here), so the state can be saved and resumed: the resumed run
 * fails again at the same step. */
static void test_failed_step_leaves_a_resumable_state(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "moons"));
    cm_train_config config = small_config(CM_METHOD_LHW);
    config.method.teacher = CM_TEACHER_SEQUENTIAL;
    config.method.chain_T = STEPS + 1;           /* one stage per step */
    config.optimizer.learning_rate = 1e30;     /* overflows within a few steps */
    cm_trainer *trainer = NULL, *restored = NULL;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    if (!trainer) return;
    cm_trainer_state s;
    cm_trainer_get_state(&s, trainer);
    size_t bytes = s.param_count * sizeof(float), stage = 0;
    float *params = cm_malloc(s.param_count, sizeof(float));
    float *target = cm_malloc(s.param_count, sizeof(float));
    cm_status status = CM_OK;
    for (size_t k = 0; k < STEPS && status == CM_OK; k++) {
        cm_trainer_get_state(&s, trainer);
        memcpy(params, s.params, bytes);
        memcpy(target, s.target, bytes);
        stage = s.stage;
        status = cm_trainer_step(trainer, NULL);
    }
    CM_CHECK(status == CM_ERR_NONFINITE, "no non-finite step in %d steps", STEPS);
    char detail[256];
    snprintf(detail, sizeof detail, "%s", cm_error_detail());
    cm_trainer_get_state(&s, trainer);
    CM_CHECK(s.stage == stage && memcmp(s.params, params, bytes) == 0 &&
                 memcmp(s.target, target, bytes) == 0,
             "the failed step changed the state (stage %zu, was %zu)", s.stage, stage);
    const char *path = temp_path("failed.safetensors");
    cm_checkpoint *ck = NULL;
    CM_CHECK_OK(cm_checkpoint_save(path, trainer, NULL, NULL, 0));
    CM_CHECK_OK(cm_checkpoint_read(&ck, path));
    if (ck) CM_CHECK_OK(cm_checkpoint_restore(&restored, ck, data));
    if (restored) {
        CM_CHECK(cm_trainer_step(restored, NULL) == CM_ERR_NONFINITE &&
                     strcmp(cm_error_detail(), detail) == 0,
                 "the resumed run did not fail the same way: %s (was %s)", cm_error_detail(),
                 detail);
    }
    cm_free(params);
    cm_free(target);
    cm_checkpoint_free(ck);
    cm_trainer_free(restored);
    cm_trainer_free(trainer);
    cm_data_free(data);
}

/* A checkpoint loads as a model (the evaluation weights), so `cm sample` can read it. */
static void test_checkpoint_is_a_model(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "8gaussians"));
    cm_train_config config = small_config(CM_METHOD_CT);
    cm_trainer *trainer = NULL;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    if (!trainer) return;
    run_steps(trainer, 5);
    const char *path = temp_path("model.safetensors");
    CM_CHECK_OK(cm_checkpoint_save(path, trainer, NULL, NULL, 0));
    cm_model model;
    CM_CHECK_OK(cm_model_load(&model, path));
    const cm_model *live = cm_trainer_model(trainer);
    CM_CHECK(memcmp(model.params, live->params, cm_model_param_count(live) * sizeof(float)) == 0,
             "evaluation weights differ");
    CM_CHECK(strcmp(model.data_source, "8gaussians") == 0, "data source '%s'", model.data_source);
    cm_model_free(&model);
    /* a model file is not a checkpoint */
    const char *model_path = temp_path("plain.safetensors");
    CM_CHECK_OK(cm_model_save(live, model_path));
    cm_checkpoint *ck = NULL;
    CM_CHECK(cm_checkpoint_read(&ck, model_path) == CM_ERR_FORMAT, "a model read as a checkpoint");
    CM_CHECK(strstr(cm_error_detail(), "not a checkpoint") != NULL, "detail: %s",
             cm_error_detail());
    cm_trainer_free(trainer);
    cm_data_free(data);
}

static void write_text(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    CM_CHECK(file != NULL, "cannot write %s", path);
    if (!file) return;
    fputs(text, file);
    fclose(file);
}

/* A resumed run refuses other data: another law, or a file whose values changed. */
static void test_restore_checks_the_data(void) {
    const char *csv = temp_path("points.csv");
    write_text(csv, "x,y\n1,2\n3,4\n5,7\n-1,0\n");
    cm_data *file_data = NULL, *moons = NULL, *rings = NULL;
    CM_CHECK_OK(cm_data_open(&file_data, csv));
    CM_CHECK_OK(cm_data_open(&moons, "moons"));
    CM_CHECK_OK(cm_data_open(&rings, "rings"));
    cm_train_config config = small_config(CM_METHOD_ICT);
    cm_trainer *a = NULL, *b = NULL, *restored = NULL;
    CM_CHECK_OK(cm_trainer_init(&a, &config, file_data));
    CM_CHECK_OK(cm_trainer_init(&b, &config, moons));
    const char *file_ck = temp_path("file.safetensors"), *law_ck = temp_path("law.safetensors");
    CM_CHECK_OK(cm_checkpoint_save(file_ck, a, NULL, NULL, 0));
    CM_CHECK_OK(cm_checkpoint_save(law_ck, b, NULL, NULL, 0));
    cm_checkpoint *fc = NULL, *lc = NULL;
    CM_CHECK_OK(cm_checkpoint_read(&fc, file_ck));
    CM_CHECK_OK(cm_checkpoint_read(&lc, law_ck));
    if (fc && lc) {
        CM_CHECK_OK(cm_checkpoint_restore(&restored, fc, file_data));
        cm_trainer_free(restored);
        CM_CHECK(cm_checkpoint_restore(&restored, fc, moons) == CM_ERR_INVALID, "law for a file");
        CM_CHECK(cm_checkpoint_restore(&restored, lc, rings) == CM_ERR_INVALID, "rings for moons");
        CM_CHECK(cm_checkpoint_restore(&restored, lc, file_data) == CM_ERR_INVALID, "file for law");
        write_text(csv, "x,y\n1,2\n3,4\n5,7.000001\n-1,0\n");
        cm_data *changed = NULL;
        CM_CHECK_OK(cm_data_open(&changed, csv));
        CM_CHECK(changed && cm_checkpoint_restore(&restored, fc, changed) == CM_ERR_INVALID,
                 "a changed file accepted");
        CM_CHECK(strstr(cm_error_detail(), "differs from the run's") != NULL, "detail: %s",
                 cm_error_detail());
        cm_data_free(changed);
    }
    cm_checkpoint_free(fc);
    cm_checkpoint_free(lc);
    cm_trainer_free(a);
    cm_trainer_free(b);
    cm_data_free(file_data);
    cm_data_free(moons);
    cm_data_free(rings);
}

/* ---- damaged checkpoints, made by rewriting a good one with one thing changed */

static const char *const metadata_keys[] = {
    "cm.format_version", "cm.config", "cm.transform", "cm.data", "cm.checkpoint.version",
    "cm.checkpoint.step", "cm.checkpoint.adam_step", "cm.checkpoint.stage", "cm.checkpoint.rng",
    "cm.checkpoint.curriculum", "cm.checkpoint.data_file",
};
static const char *const tensor_names[] = {
    "mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias", "mlp.2.weight", "mlp.2.bias",
    "train.params", "train.adam.m", "train.adam.v", "train.target",
};
#define KEY_COUNT (sizeof metadata_keys / sizeof metadata_keys[0])
#define TENSOR_COUNT (sizeof tensor_names / sizeof tensor_names[0])

typedef struct {
    const char *what;
    const char *key, *value;  /* metadata `key` replaced by `value` (NULL: removed) */
    const char *tensor;       /* this tensor changed: */
    int drop;                 /*   left out */
    int shorten;              /*   one element fewer */
    float poison;             /*   element 0 set to this (when not 0) */
    int at_restore;           /* refused by cm_checkpoint_restore rather than by reading */
} damage;

static void rewrite(const char *source, const char *target, const damage *d) {
    cm_safetensors *file = NULL;
    CM_CHECK_OK(cm_safetensors_read(&file, source));
    if (!file) return;
    const char *keys[KEY_COUNT], *values[KEY_COUNT];
    size_t key_count = 0, count = 0;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *value = cm_safetensors_metadata(file, metadata_keys[i]);
        if (d->key && strcmp(d->key, metadata_keys[i]) == 0) value = d->value;
        if (value) keys[key_count] = metadata_keys[i], values[key_count++] = value;
    }
    cm_tensor_view tensors[TENSOR_COUNT];
    float *copy = NULL;
    for (size_t i = 0; i < TENSOR_COUNT; i++) {
        cm_tensor_view view;
        if (cm_safetensors_get(&view, file, tensor_names[i]) != CM_OK) continue;
        if (d->tensor && strcmp(d->tensor, tensor_names[i]) == 0) {
            if (d->drop) continue;
            if (d->shorten) view.shape[view.ndim - 1]--;
            if (d->poison != 0) {
                copy = cm_malloc(view.shape[0], sizeof(float));
                memcpy(copy, view.data, view.shape[0] * sizeof(float));
                copy[0] = d->poison;
                view.data = copy;
            }
        }
        tensors[count++] = view;
    }
    CM_CHECK_OK(cm_safetensors_write(target, tensors, count, keys, values, key_count));
    cm_free(copy);
    cm_safetensors_free(file);
}

static void check_refused(const char *path, const cm_data *data, const damage *d) {
    long live = cm_alloc_live_count();
    cm_checkpoint *ck = NULL;
    cm_trainer *trainer = NULL;
    cm_status status = cm_checkpoint_read(&ck, path);
    if (d->at_restore) {
        CM_CHECK(status == CM_OK, "%s: refused on reading: %s", d->what, cm_error_detail());
        if (ck) status = cm_checkpoint_restore(&trainer, ck, data);
    }
    CM_CHECK(status != CM_OK && trainer == NULL, "%s: accepted", d->what);
    CM_CHECK(strstr(cm_error_detail(), path) != NULL, "%s: detail lacks the file name: %s",
             d->what, cm_error_detail());
    cm_trainer_free(trainer);
    cm_checkpoint_free(ck);
    CM_CHECK(cm_alloc_live_count() == live, "%s: leaked %ld", d->what,
             cm_alloc_live_count() - live);
}

static void test_damaged_checkpoints_refused(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "moons"));
    cm_train_config config = small_config(CM_METHOD_LHW);
    config.method.teacher = CM_TEACHER_SEQUENTIAL; /* has a stage and a target */
    cm_trainer *trainer = NULL;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    if (!trainer) return;
    run_steps(trainer, 9);
    char good[512];
    snprintf(good, sizeof good, "%s", temp_path("good.safetensors"));
    CM_CHECK_OK(cm_checkpoint_save(good, trainer, NULL, NULL, 0));
    cm_trainer_free(trainer);
    const damage cases[] = {
        {"checkpoint version 3", "cm.checkpoint.version", "3", NULL, 0, 0, 0, 0},
        {"checkpoint version 1", "cm.checkpoint.version", "1", NULL, 0, 0, 0, 0},
        {"no checkpoint version", "cm.checkpoint.version", NULL, NULL, 0, 0, 0, 0},
        {"step past the end", "cm.checkpoint.step", "41", NULL, 0, 0, 0, 0},
        {"step not a number", "cm.checkpoint.step", "9x", NULL, 0, 0, 0, 0},
        {"step negative", "cm.checkpoint.step", "-1", NULL, 0, 0, 0, 0},
        {"step huge", "cm.checkpoint.step", "99999999999999999999999", NULL, 0, 0, 0, 0},
        {"no adam step", "cm.checkpoint.adam_step", NULL, NULL, 0, 0, 0, 0},
        {"adam step differs", "cm.checkpoint.adam_step", "8", NULL, 0, 0, 0, 1},
        {"wrong stage", "cm.checkpoint.stage", "5", NULL, 0, 0, 0, 1},
        {"rng not JSON", "cm.checkpoint.rng", "{", NULL, 0, 0, 0, 0},
        {"rng stream missing", "cm.checkpoint.rng", "{\"data\": {}}", NULL, 0, 0, 0, 0},
        {"curriculum differs", "cm.checkpoint.curriculum", "{\"levels\": 7, \"target_decay\": 0}",
         NULL, 0, 0, 0, 0},
        {"curriculum malformed", "cm.checkpoint.curriculum", "[]", NULL, 0, 0, 0, 0},
        {"config of another width", "cm.config",
         "{\"method\": \"lhw\", \"dim\": 2, \"width\": 17, \"depth\": 2, \"steps\": 40, "
         "\"T\": 11, \"teacher\": \"sequential\"}", NULL, 0, 0, 0, 0},
        {"config not JSON", "cm.config", "{\"method\": ", NULL, 0, 0, 0, 0},
        {"data file note malformed", "cm.checkpoint.data_file", "{\"rows\": 1}", NULL, 0, 0, 0, 0},
        {"transform scale 0", "cm.transform", "{\"shift\": [0, 0], \"scale\": [1, 0]}", NULL, 0,
         0, 0, 0},
        {"no Adam second moment", NULL, NULL, "train.adam.v", 1, 0, 0, 0},
        {"no target", NULL, NULL, "train.target", 1, 0, 0, 0},
        {"weights one short", NULL, NULL, "train.params", 0, 1, 0, 0},
        {"EMA layer one short", NULL, NULL, "mlp.1.bias", 0, 1, 0, 0},
        {"NaN weight", NULL, NULL, "train.params", 0, 0, NAN, 1},
        {"infinite target", NULL, NULL, "train.target", 0, 0, INFINITY, 1},
        {"negative second moment", NULL, NULL, "train.adam.v", 0, 0, -1.0f, 1},
        {"NaN EMA weight", NULL, NULL, "mlp.0.bias", 0, 0, NAN, 0},
    };
    const char *bad = temp_path("bad.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite(good, bad, &cases[i]);
        check_refused(bad, data, &cases[i]);
    }
    /* the state's stream keys must derive from the seed */
    cm_checkpoint *ck = NULL;
    CM_CHECK_OK(cm_checkpoint_read(&ck, good));
    const char *rng = ck ? cm_checkpoint_metadata(ck, "cm.checkpoint.rng") : NULL;
    if (rng) {
        char *edited = cm_malloc(strlen(rng) + 2, 1);
        strcpy(edited, rng);
        char *digit = strchr(edited, '[') + 1; /* first digit of the data stream's key */
        *digit = *digit == '1' ? '2' : '1';
        damage key = {"stream key not from the seed", "cm.checkpoint.rng", edited, NULL, 0, 0, 0, 1};
        rewrite(good, bad, &key);
        check_refused(bad, data, &key);
        cm_free(edited);
    }
    cm_checkpoint_free(ck);
    /* every truncation of the file */
    void *bytes = NULL;
    size_t size = 0;
    CM_CHECK_OK(cm_file_read_all(&bytes, &size, good, 1 << 24));
    damage cut = {"truncated", NULL, NULL, NULL, 0, 0, 0, 0};
    for (size_t length = 0; bytes && length < size; length += 1 + length / 8) {
        CM_CHECK_OK(cm_file_write_atomic(bad, bytes, length));
        check_refused(bad, data, &cut);
    }
    cm_free(bytes);
    cm_data_free(data);
}

/* ---- run directories */

static int count_numbered(const char *dir) {
    int count = 0;
    char path[600];
    for (size_t step = 0; step <= STEPS; step++) {
        snprintf(path, sizeof path, "%s/checkpoints/step-%08zu.safetensors", dir, step);
        count += access(path, F_OK) == 0;
    }
    return count;
}

static void test_run_directory_keeps_newest(void) {
    char dir[512], path[600], written[600];
    snprintf(dir, sizeof dir, "%s", temp_path("run"));
    mkdir(dir, 0777);
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "rings"));
    cm_train_config config = small_config(CM_METHOD_ICT);
    cm_trainer *trainer = NULL;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    if (!trainer) return;
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/checkpoints/.step-00000003.safetensors.tmpAbCdEf", dir);
    write_text(path, "left by a crash");
    const char *keys[] = {"cm.cli.threads"}, *values[] = {"2"};
    for (int save = 0; save < 5; save++) {
        run_steps(trainer, 3);
        CM_CHECK_OK(cm_checkpoint_save_run(written, sizeof written, dir, trainer, 2, keys, values,
                                           1));
    }
    CM_CHECK(strstr(written, "step-00000015.safetensors") != NULL, "wrote %s", written);
    CM_CHECK(count_numbered(dir) == 2, "%d numbered checkpoints kept, want 2", count_numbered(dir));
    CM_CHECK(access(path, F_OK) != 0, "temporary file of a crash not removed");
    snprintf(path, sizeof path, "%s/%s", dir, CM_CHECKPOINT_RUN_FILE);
    cm_checkpoint *ck = NULL;
    CM_CHECK_OK(cm_checkpoint_read(&ck, path));
    CM_CHECK(ck && cm_checkpoint_step(ck) == 15, "the run's checkpoint is not the newest");
    CM_CHECK(ck && cm_checkpoint_metadata(ck, "cm.cli.threads") &&
                 strcmp(cm_checkpoint_metadata(ck, "cm.cli.threads"), "2") == 0,
             "extra metadata lost");
    cm_checkpoint_free(ck);
    CM_CHECK(cm_checkpoint_save(path, trainer, (const char *[]){"bad"}, values, 1) ==
                 CM_ERR_INVALID, "an extra key outside cm.cli.* accepted");
    CM_CHECK_OK(cm_checkpoint_clear_run(dir));
    CM_CHECK(count_numbered(dir) == 0 && access(path, F_OK) != 0, "clear left checkpoints");
    cm_trainer_free(trainer);
    cm_data_free(data);
}

static void test_config_diff_names_the_field(void) {
    cm_train_config a = small_config(CM_METHOD_ICT), b = a;
    CM_CHECK_OK(cm_train_config_diff(&a, &b));
    b.optimizer.learning_rate = 0.01;
    CM_CHECK(cm_train_config_diff(&a, &b) == CM_ERR_INVALID, "different lr not seen");
    CM_CHECK(strstr(cm_error_detail(), "\"lr\" is 0.001") != NULL, "detail: %s", cm_error_detail());
    cm_train_config parsed;
    CM_CHECK(cm_train_config_from_json(&parsed, "{\"method\": \"ict\", \"dim\": 2, \"lr\": 0.1, "
                                       "\"lr\": 0.2}", "twice") == CM_ERR_FORMAT,
             "a repeated key accepted");
}

/* ---- allocation failure: the k-th allocation fails, for every k until the call succeeds */

typedef struct {
    const char *path, *model_path, *source;
    const cm_train_config *config;
    const cm_data *data;
    const cm_checkpoint *checkpoint;
    cm_trainer *trainer;
} oom_context;

typedef enum {
    OOM_DATA, OOM_TRAINER, OOM_SAFETENSORS, OOM_MODEL, OOM_CK_READ, OOM_CK_RESTORE, OOM_CK_SAVE,
    OOM_CK_SAVE_RUN, OOM_KIND_COUNT
} oom_kind;

static const char *const oom_names[OOM_KIND_COUNT] = {
    "cm_data_open", "cm_trainer_init", "cm_safetensors_read", "cm_model_load",
    "cm_checkpoint_read", "cm_checkpoint_restore", "cm_checkpoint_save", "cm_checkpoint_save_run",
};

/* One call of constructor `kind`; everything it made is freed again. */
static cm_status oom_call(oom_kind kind, oom_context *c) {
    cm_status status = CM_ERR_INVALID;
    switch (kind) {
    case OOM_DATA: {
        cm_data *data = NULL;
        status = cm_data_open(&data, c->source);
        cm_data_free(data);
        break;
    }
    case OOM_TRAINER: {
        cm_trainer *trainer = NULL;
        status = cm_trainer_init(&trainer, c->config, c->data);
        cm_trainer_free(trainer);
        break;
    }
    case OOM_SAFETENSORS: {
        cm_safetensors *file = NULL;
        status = cm_safetensors_read(&file, c->path);
        cm_safetensors_free(file);
        break;
    }
    case OOM_MODEL: {
        cm_model model;
        status = cm_model_load(&model, c->model_path);
        if (status == CM_OK) cm_model_free(&model);
        break;
    }
    case OOM_CK_READ: {
        cm_checkpoint *ck = NULL;
        status = cm_checkpoint_read(&ck, c->path);
        cm_checkpoint_free(ck);
        break;
    }
    case OOM_CK_RESTORE: {
        cm_trainer *trainer = NULL;
        status = cm_checkpoint_restore(&trainer, c->checkpoint, c->data);
        cm_trainer_free(trainer);
        break;
    }
    case OOM_CK_SAVE: status = cm_checkpoint_save(c->path, c->trainer, NULL, NULL, 0); break;
    case OOM_CK_SAVE_RUN: {
        char written[600];
        status = cm_checkpoint_save_run(written, sizeof written, temp_path("oom-run"), c->trainer,
                                        1, NULL, NULL, 0);
        break;
    }
    case OOM_KIND_COUNT: break;
    }
    return status;
}

static void check_out_of_memory(oom_kind kind, oom_context *c, const char *what) {
    long k;
    for (k = 0; k < OOM_ATTEMPTS_MAX; k++) {
        long live = cm_alloc_live_count();
        cm_alloc_fail_after(k);
        cm_status status = oom_call(kind, c);
        cm_alloc_fail_after(-1);
        CM_CHECK(status == CM_OK || status == CM_ERR_NOMEM, "%s (%s), allocation %ld fails: %s: %s",
                 oom_names[kind], what, k, cm_status_name(status), cm_error_detail());
        CM_CHECK(cm_alloc_live_count() == live, "%s (%s), allocation %ld fails: leaked %ld",
                 oom_names[kind], what, k, cm_alloc_live_count() - live);
        if (status != CM_ERR_NOMEM) break;
    }
    CM_CHECK(k < OOM_ATTEMPTS_MAX, "%s (%s) never succeeded", oom_names[kind], what);
}

static void test_out_of_memory_everywhere(void) {
    const char *csv = temp_path("oom.csv");
    write_text(csv, "1,2\n3,4\n5,6\n");
    const char *path = temp_path("oom.safetensors"), *model_path = temp_path("oom-model.safetensors");
    mkdir(temp_path("oom-run"), 0777);
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_CT, CM_METHOD_LHW};
    const char *sources[] = {"gmm:d=2,k=3", "moons", csv};
    for (int m = 0; m < 3; m++) {
        cm_data *data = NULL;
        CM_CHECK_OK(cm_data_open(&data, sources[m]));
        cm_train_config config = small_config(methods[m]);
        if (methods[m] == CM_METHOD_LHW) config.method.teacher = CM_TEACHER_SEQUENTIAL;
        oom_context c = {path, model_path, sources[m], &config, data, NULL, NULL};
        CM_CHECK_OK(cm_trainer_init(&c.trainer, &config, data));
        if (!data || !c.trainer) return;
        run_steps(c.trainer, 3);
        CM_CHECK_OK(cm_checkpoint_save(path, c.trainer, NULL, NULL, 0));
        CM_CHECK_OK(cm_model_save(cm_trainer_model(c.trainer), model_path));
        cm_checkpoint *ck = NULL;
        CM_CHECK_OK(cm_checkpoint_read(&ck, path));
        c.checkpoint = ck;
        for (int kind = 0; kind < OOM_KIND_COUNT; kind++)
            if (ck || kind != OOM_CK_RESTORE)
                check_out_of_memory((oom_kind)kind, &c, cm_method_name(methods[m]));
        cm_checkpoint_free(ck);
        cm_trainer_free(c.trainer);
        cm_data_free(data);
    }
}

const cm_test_case cm_tests_checkpoint[] = {
    {"resume_is_bit_exact", test_resume_is_bit_exact},
    {"failed_step_leaves_a_resumable_state", test_failed_step_leaves_a_resumable_state},
    {"checkpoint_is_a_model", test_checkpoint_is_a_model},
    {"restore_checks_the_data", test_restore_checks_the_data},
    {"damaged_checkpoints_refused", test_damaged_checkpoints_refused},
    {"run_directory_keeps_newest", test_run_directory_keeps_newest},
    {"config_diff_names_the_field", test_config_diff_names_the_field},
    {"out_of_memory_everywhere", test_out_of_memory_everywhere},
    {NULL, NULL},
};
