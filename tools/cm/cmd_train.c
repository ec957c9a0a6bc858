/* cmd_train.c: `cm train`: train a consistency model (or a dsm denoiser) and write
 * DIR/model.safetensors (with the command line that made it, metadata "cm.command"),
 * DIR/train.csv (step, loss, lr, elapsed, grad_norm, levels, sw1, sw1_floor), DIR/config.json,
 * DIR/loss.png and checkpoints (DIR/checkpoints/step-N.safetensors every --save-every steps and
 * at the end, the newest --keep of them kept, DIR/checkpoint.safetensors naming the newest).
 * `--resume DIR` continues a run bit-exactly from its checkpoint with the stored configuration
 * (its step count too: the curricula and the cosine rate are functions of k / K, so a longer
 * run is a new one, `--init-from MODEL`, which starts from a model's weights with a fresh
 * schedule). A new run refuses a --out holding a run or files cm did not write, unless --force.
 * SIGINT/SIGTERM: the handler only sets a flag; the loop saves a checkpoint after the current
 * step and exits with 128 + the signal number. A second signal stops at once.
 * Progress: a bar with loss, steps/s and ETA on a terminal, plain lines (with the ETA) every 10%
 * otherwise;
 * `--eval-every K` adds the sliced W1 of one-step samples of the evaluation weights against
 * fixed data draws, beside its noise floor (train.csv and the progress line); on image data
 * also DIR/previews/step-XXXXXXXX.png, a grid of the first 64 of those samples (the same noise
 * every time), so a person can watch training.
 * cd and cd2 (a two-time model g(x, t, s), distilled the same way): the teacher denoiser is a dsm
 * model (--teacher-model, trained on the same data: checked; its transform is adopted) or the
 * exact law of a gauss:/gmm: source standardised with the run's transform (law.h); the
 * teacher's path is kept in the checkpoint (cm.cli.teacher_model) for --resume.
 * Started by mpirun (an MPI build; dist.h, docs/distributed.md), every process reads the data,
 * the teacher and the checkpoint itself and computes its row blocks (cm_trainer_init_comm,
 * cm_checkpoint_restore_comm: the bits of one process); rank 0 alone locks and writes the
 * directory and prints. The processes agree on a signal after every step, so they stop at the
 * same step and rank 0 saves it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "cm/alloc.h"
#include "cm/checkpoint.h"
#include "cm/config.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/image.h"
#include "cm/io.h"
#include "cm/law.h"
#include "cm/metrics.h"
#include "plot.h"
#include "cm/sampler.h"
#include "cm/train.h"

#define TRAIN_SAVE_EVERY_DEFAULT 1000
#define TRAIN_KEEP_DEFAULT 3
#define TRAIN_OPTIONS_MAX 128
#define TRAIN_PATH_MAX 4096
#define TRAIN_PLOT_POINTS_MAX 100000          /* loss.png: at most this many points */
#define TRAIN_LOG_MAX_BYTES ((uint64_t)1 << 30) /* train.csv read back on resume */
#define TRAIN_LOG_LINE_MAX 256
#define TRAIN_LOG_HEADER "step,loss,lr,elapsed,grad_norm,levels,sw1,sw1_floor\n"
#define TRAIN_LOG_HEADER_V1 "step,loss,lr,elapsed,grad_norm,levels\n" /* before --eval-every */
#define TRAIN_LOCK_FILE ".cm-train.lock"
#define TRAIN_SIGNAL_EXIT_BASE 128            /* exit status 128 + signal, as a shell reports it */
#define TRAIN_SMOOTHING 0.98                  /* EMA of the printed loss */
/* --eval-every: one-step samples and data draws of this many points, sliced W1 over this many
 * directions (a standard error of a few % of the floor at n = 2000; docs/training.md) */
#define TRAIN_EVAL_POINTS 2000
#define TRAIN_EVAL_PROJECTIONS 128
#define TRAIN_OUT_LISTED 4                    /* entries named when --out is refused */
#define TRAIN_PREVIEW_DIR "previews"          /* --eval-every on images: DIR/previews/ */
#define TRAIN_PREVIEW_IMAGES 64               /* an 8 x 8 grid of the evaluation's first samples */
#define TRAIN_PREVIEW_COLUMNS 8
#define TRAIN_PREVIEW_PADDING 2

/* The command line: the run's configuration (every setting of its field tables: config.h,
 * network.h) and the settings of this program that are not part of the run. */
typedef struct {
    cm_train_config config;
    const char *data, *out, *resume, *teacher_model, *network, *columns, *init_from;
    size_t threads, save_every, keep, eval_every;
    int quiet, force, overwrite, allow_other_teacher_data;
    char *command; /* the command line recorded in the model (cm_malloc'ed; NULL: unknown) */
} train_options;

/* --eval-every: fixed data draws (the EVAL stream of the run's seed), their floor, and room for
 * the samples; the evaluation never touches the trainer's streams, so it changes no bit of the
 * run. */
typedef struct {
    size_t every, n, dim;
    double *reference, *samples;
    double floor, last; /* last: the newest value (NAN before the first) */
    uint64_t seed;
    size_t channels, height, width; /* image data with 1 or 3 channels: previews; else 0 */
} train_eval;

/* One run of the loop: what it writes to and what it remembers for the outputs. */
typedef struct {
    const train_options *o;
    int writer; /* rank 0 of the processes (the only one): writes the directory and prints */
    const char *dir;
    const cm_train_config *config;
    const cm_data *data;
    cm_trainer *trainer;
    FILE *log;
    double *plot_step, *plot_loss; /* every plot_stride-th step's loss, for loss.png */
    size_t plot_count, plot_capacity, plot_stride;
    double elapsed_offset;         /* seconds of the run before this session (resume) */
    size_t saved_step;             /* step of the newest checkpoint; SIZE_MAX: none */
    char saved_path[TRAIN_PATH_MAX];
    char threads_text[32], save_every_text[32], keep_text[32], eval_every_text[32],
        allow_text[8]; /* cm.cli.* metadata */
    char teacher_path[TRAIN_PATH_MAX]; /* --teacher-model as a file (a run directory resolved) */
    /* cd teacher: a dsm model or an exact law, owned here, outliving the trainer */
    cm_model teacher_model;
    cm_law *law, *law_standardised;
    cm_denoiser teacher;
    train_eval eval;
} train_session;

static volatile sig_atomic_t caught_signal = 0;

/* Only remembers the signal: the loop saves and exits. */
static void on_signal(int signal_number) { caught_signal = signal_number; }

static void install_signal_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    /* SA_RESTART: system calls in flight complete, the loop polls the flag; SA_RESETHAND: the
     * handler runs once, so a second signal of the same kind takes the default action at once */
    action.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

static const char *signal_name(int signal_number) {
    return signal_number == SIGINT ? "SIGINT" : signal_number == SIGTERM ? "SIGTERM" : "a signal";
}

/* ---------------------------------------------------------------- options and config */

/* Every option: the program's own, then the run's settings from the field tables of config.h
 * and of the network type (so a new setting appears here by being declared once). */
static size_t option_table(cli_option *out, cli_field_target *targets, train_options *o) {
    cm_train_config *c = &o->config;
    size_t n = 0, count, method_count;
    out[n++] = (cli_option){"data", OPT_STRING, &o->data, "data source: 8gaussians|moons|swissroll|checkerboard|rings, gauss:..., gmm:..., FILE.csv|npy; images: fashion-mnist[:test], shapes[:size=S], DIR/ of PNG files, .npy [N, H, W] [required unless --resume]", 0, 0, 0};
    const cm_field *method = cm_method_config_fields(&method_count);
    n += cli_field_options(out + n, targets + n, method, 1, &c->method); /* "method" comes first */
    out[n++] = (cli_option){"network", OPT_STRING, &o->network, "network type: mlp | unet (images)", 0, 0, 0};
    const cm_field *run = cm_train_config_fields(&count);
    n += cli_field_options(out + n, targets + n, run, count, c);
    const cli_option program[] = {
        {"out", OPT_STRING, &o->out, "output directory (created; refused if it holds a run or other files, unless --force) [required unless --resume]", 0, 0, 0},
        {"columns", OPT_STRING, &o->columns, "columns of a .csv/.npy --data file: header names, 0-based indices or ranges A-B (default: all; docs/data.md)", 0, 0, 0},
        {"resume", OPT_STRING, &o->resume, "continue the run in DIR from DIR/checkpoint.safetensors, with its stored configuration", 0, 0, 0},
        {"init-from", OPT_STRING, &o->init_from, "start a new run from this model's weights (file or run directory) with a fresh schedule; settings default to the model's", 0, 0, 0},
        {"force", OPT_FLAG, &o->force, "start a new run in a --out that holds a run (finished or not) or files cm did not write", 0, 0, 0},
        {"overwrite", OPT_FLAG, &o->overwrite, "the same as --force (its former name)", 0, 0, 0},
        {"save-every", OPT_SIZE, &o->save_every, "checkpoint every N steps (0: only at the end and on SIGINT/SIGTERM)", 0, 0, 0},
        {"keep", OPT_SIZE, &o->keep, "numbered checkpoints kept in DIR/checkpoints (the newest)", 1, 0, 0},
        {"eval-every", OPT_SIZE, &o->eval_every, "every N steps, sliced W1 of 2000 one-step samples against data draws, with its floor (train.csv, progress); image data: also a grid of the first 64 samples in DIR/previews/step-N.png; 0: never", 0, 0, 0},
        {"threads", OPT_SIZE, &o->threads, "threads of the pool (resume: the run's, unless given); results do not depend on it", 1, 0, 0},
        {"teacher-model", OPT_STRING, &o->teacher_model, "cd, cd2: teacher = this dsm model, a file or run directory (default: the exact law of a gauss:/gmm: source)", 0, 0, 0},
        {"allow-other-teacher-data", OPT_FLAG, &o->allow_other_teacher_data, "cd, cd2: accept a --teacher-model trained on other data than --data", 0, 0, 0},
        {"quiet", OPT_FLAG, &o->quiet, "no progress output", 0, 0, 0},
    };
    memcpy(out + n, program, sizeof program);
    n += sizeof program / sizeof program[0];
    const cm_network_type *type = c->network.type;
    n += cli_field_options(out + n, targets + n, type->options, type->option_count,
                           cm_network_options(&c->network));
    const cm_field *optimizer = cm_optimizer_config_fields(&count);
    n += cli_field_options(out + n, targets + n, optimizer, count, &c->optimizer);
    n += cli_field_options(out + n, targets + n, method + 1, method_count - 1, &c->method);
    return n;
}

static const char *const train_summary =
    "Train a consistency model. Writes DIR/model.safetensors, DIR/train.csv,\n"
    "DIR/config.json, DIR/loss.png and checkpoints (DIR/checkpoints/, DIR/checkpoint.safetensors).\n"
    "Methods (cm --help has a line on each): lhw ([LHW]), ct ([CM] CT), ict ([iCT]); dsm trains\n"
    "a denoiser (EDM), cd distils one into a consistency model ([CM]), cd2 into a two-time\n"
    "model g(x, t, s) ([JHMZ] sampling).\n"
    "`cm train --resume DIR` continues a stopped run exactly (docs/checkpoints.md); flags that\n"
    "change the run, --steps included, must match the stored ones. To train a finished model\n"
    "further: --init-from DIR --steps N --out NEW. Defaults below are those of the --method (and\n"
    "--network) given, ict's otherwise: `cm train --method dsm --help` shows dsm's.";

/* The method and network type named on the command line (or the defaults), before the rest is
 * parsed: the other settings' defaults depend on them. */
static int scan_method_and_network(cm_method *method, const cm_network_type **type, int argc,
                                   char **argv) {
    const char *method_text = cli_find_value(argc, argv, 2, "method");
    const char *type_text = cli_find_value(argc, argv, 2, "network");
    *method = CM_METHOD_ICT;
    *type = cm_network_type_default();
    if (method_text && cm_method_parse(method, method_text) != CM_OK)
        return cli_usage_error("train", "--method: %s", cm_error_detail());
    if (type_text && cm_network_type_parse(type, type_text) != CM_OK)
        return cli_usage_error("train", "--network: %s", cm_error_detail());
    return CLI_OK;
}

/* Parse the command line into o, its config starting from o->config. */
static int parse_options(train_options *o, int argc, char **argv) {
    cli_option options[TRAIN_OPTIONS_MAX];
    cli_field_target targets[TRAIN_OPTIONS_MAX];
    size_t count = option_table(options, targets, o);
    return cli_parse(argc, argv, 2, options, count, "train", train_summary);
}

/* ---------------------------------------------------------------- files of the run directory */

static cm_status write_config_json(const char *path, const cm_train_config *config,
                                   const char *data_description) {
    char *json = NULL;
    CM_TRY(cm_train_config_to_json(&json, config));
    size_t capacity = strlen(json) + 2 * strlen(data_description) + 64;
    char *text = cm_malloc(capacity, 1);
    if (!text) {
        cm_free(json);
        return cm_error_set(CM_ERR_NOMEM, "config.json");
    }
    /* data descriptions are canonical spec strings or paths; escape quotes and backslashes */
    size_t used = (size_t)snprintf(text, capacity, "{\"data\": \"");
    for (const char *p = data_description; *p; p++) {
        if (*p == '"' || *p == '\\') text[used++] = '\\';
        text[used++] = (unsigned char)*p < 0x20 ? '?' : *p;
    }
    used += (size_t)snprintf(text + used, capacity - used, "\", \"train\": %s}\n", json);
    cm_status status = cm_file_write_atomic(path, text, used);
    cm_free(text);
    cm_free(json);
    return status;
}

/* An exclusive lock on DIR/.cm-train.lock, held until the process ends (also by a kill):
 * two trainers never write one run directory. */
static cm_status lock_directory(const char *dir) {
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, TRAIN_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return cm_error_set(CM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct flock lock;
    memset(&lock, 0, sizeof lock);
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &lock) != 0) {
        int error = errno;
        close(fd);
        if (error == EACCES || error == EAGAIN)
            return cm_error_set(CM_ERR_IO, "%s: another cm train is writing this directory", dir);
        return cm_error_set(CM_ERR_IO, "%s: cannot lock: %s", path, strerror(error));
    }
    return CM_OK; /* the descriptor stays open: closing it would release the lock */
}

static int file_exists(const char *path) {
    struct stat info;
    return lstat(path, &info) == 0;
}

static void plot_add(train_session *s, size_t step, double loss) {
    if (step % s->plot_stride != 0 && step != s->config->steps) return;
    if (s->plot_count == s->plot_capacity) return;
    s->plot_step[s->plot_count] = (double)step;
    s->plot_loss[s->plot_count++] = loss;
}

static cm_status session_init(train_session *s, const train_options *o, const char *dir,
                              const cm_train_config *config, const cm_data *data) {
    *s = (train_session){.o = o, .writer = cli_dist_rank() == 0, .dir = dir, .config = config,
                         .data = data, .saved_step = SIZE_MAX, .eval = {.last = NAN}};
    s->plot_stride = (config->steps + TRAIN_PLOT_POINTS_MAX - 1) / TRAIN_PLOT_POINTS_MAX;
    s->plot_capacity = config->steps / s->plot_stride + 2;
    s->plot_step = cm_malloc(s->plot_capacity, sizeof(double));
    s->plot_loss = cm_malloc(s->plot_capacity, sizeof(double));
    if (!s->plot_step || !s->plot_loss) return cm_error_set(CM_ERR_NOMEM, "loss history");
    snprintf(s->threads_text, sizeof s->threads_text, "%zu", o->threads);
    snprintf(s->save_every_text, sizeof s->save_every_text, "%zu", o->save_every);
    snprintf(s->keep_text, sizeof s->keep_text, "%zu", o->keep);
    snprintf(s->eval_every_text, sizeof s->eval_every_text, "%zu", o->eval_every);
    snprintf(s->allow_text, sizeof s->allow_text, "%d", o->allow_other_teacher_data);
    if (o->teacher_model)
        CM_TRY(cli_model_path(s->teacher_path, sizeof s->teacher_path, o->teacher_model));
    return CM_OK;
}

static void session_free(train_session *s) {
    if (s->log) fclose(s->log);
    cm_free(s->plot_step);
    cm_free(s->plot_loss);
    cm_free(s->eval.reference);
    cm_free(s->eval.samples);
    cm_trainer_free(s->trainer);
    cm_denoiser_free(&s->teacher);
    cm_model_free(&s->teacher_model);
    cm_law_free(s->law_standardised);
    cm_law_free(s->law);
}

/* ---------------------------------------------------------------- same data */

/* 1 when two transforms agree to 1e-9 relative to the scale, coordinate by coordinate. */
static int same_transform(const cm_transform *a, const cm_transform *b) {
    if (a->dim != b->dim) return 0;
    for (size_t i = 0; i < a->dim; i++)
        if (fabs(a->shift[i] - b->shift[i]) > 1e-9 * b->scale[i] ||
            fabs(a->scale[i] - b->scale[i]) > 1e-9 * b->scale[i])
            return 0;
    return 1;
}

/* Was a model with data source `stored` and transform `model_transform` trained on `data`? The
 * same description, or (a file under another path) the same file: a file's transform is fitted
 * on all its rows, so the same rows give the same transform to the bit, `fitted` here. Laws and
 * image sources are identified by their description alone (a law's transform depends on the
 * seed; every image source has the same fixed one). */
static int same_training_data(const char *stored, const cm_transform *model_transform,
                              const cm_data *data, const cm_transform *fitted) {
    if (strcmp(stored, cm_data_describe(data)) == 0) return 1;
    return cm_data_values(data) && !cm_data_has_fixed_transform(data) && fitted &&
           same_transform(model_transform, fitted);
}

/* cd, cd2: give the trainer its teacher (fresh: a dsm model's transform is adopted; resumed: the
 * checkpoint's transform, which is that one, stays). A teacher model must have been trained on
 * this run's data (its denoiser is right only for its own data), unless
 * --allow-other-teacher-data. */
static cm_status attach_teacher(train_session *s, int fresh) {
    if (!cm_method_is_distillation(s->config->method.kind)) {
        if (s->o->teacher_model)
            return cm_error_set(CM_ERR_INVALID, "--teacher-model applies to --method cd and cd2");
        return CM_OK;
    }
    if (s->o->teacher_model) {
        CM_TRY(cm_model_load(&s->teacher_model, s->teacher_path));
        const cm_model *teacher = &s->teacher_model;
        const cm_transform *fitted = &cm_trainer_model(s->trainer)->transform;
        if (!teacher->data_source[0] && !s->o->quiet)
            fprintf(stderr, "cm train: note: the teacher %s does not record its data; it cannot "
                            "be checked against %s\n", s->teacher_path, cm_data_describe(s->data));
        else if (!s->o->allow_other_teacher_data &&
                 !same_training_data(teacher->data_source, &teacher->transform, s->data, fitted))
            return cm_error_set(CM_ERR_INVALID, "--teacher-model %s was trained on '%s', this run's "
                                "data is '%s': a teacher's denoiser is right only for its own data "
                                "(pass --allow-other-teacher-data to distil it anyway)",
                                s->teacher_path, teacher->data_source, cm_data_describe(s->data));
        CM_TRY(cm_denoiser_from_model_rows(&s->teacher, teacher,
                                           s->config->batch < CM_SAMPLER_CHUNK ? s->config->batch
                                                                               : CM_SAMPLER_CHUNK));
        return cm_trainer_set_teacher(s->trainer, &s->teacher, fresh ? &teacher->transform : NULL);
    }
    if (cm_law_from_data(&s->law, s->data) != CM_OK)
        return cm_error_set(CM_ERR_INVALID, "%s on %s needs --teacher-model (a dsm model): only "
                            "gauss: and gmm: sources have an exact teacher",
                            cm_method_name(s->config->method.kind), cm_data_describe(s->data));
    const cm_transform *t = &cm_trainer_model(s->trainer)->transform;
    CM_TRY(cm_law_standardise(&s->law_standardised, s->law, t->shift, t->scale));
    CM_TRY(cm_denoiser_from_law(&s->teacher, s->law_standardised));
    return cm_trainer_set_teacher(s->trainer, &s->teacher, NULL);
}

/* Write a numbered checkpoint of the current step (after flushing train.csv, so the log
 * always reaches at least the newest checkpoint). */
static cm_status save_checkpoint(train_session *s) {
    if (s->log && (fflush(s->log) != 0 || ferror(s->log)))
        return cm_error_set(CM_ERR_IO, "%s/train.csv: write failed: %s", s->dir, strerror(errno));
    const char *keys[7] = {"cm.cli.threads", "cm.cli.save_every", "cm.cli.keep",
                           "cm.cli.eval_every", "cm.cli.allow_other_teacher_data"};
    const char *values[7] = {s->threads_text, s->save_every_text, s->keep_text,
                             s->eval_every_text, s->allow_text};
    size_t count = 5;
    if (s->o->teacher_model) {
        keys[count] = "cm.cli.teacher_model";
        values[count++] = s->teacher_path;
    }
    if (s->o->command) {
        keys[count] = "cm.cli.command";
        values[count++] = s->o->command;
    }
    CM_TRY(cm_checkpoint_save_run(s->saved_path, sizeof s->saved_path, s->dir, s->trainer,
                                  s->o->keep, keys, values, count));
    s->saved_step = cm_trainer_steps_done(s->trainer);
    return CM_OK;
}

/* train.csv of a resumed run: keep the header and the rows of steps 1..step in order (rows
 * after the checkpoint, and a row cut short by a kill, are dropped), rewrite it atomically and
 * reopen it for appending. A train.csv of an earlier cm (six columns, TRAIN_LOG_HEADER_V1) gets
 * the new header and two empty columns per row. The kept losses feed loss.png; the last elapsed
 * time continues. */
static cm_status resume_log(train_session *s, size_t step) {
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/train.csv", s->dir);
    void *bytes = NULL;
    size_t size = 0, rows = 0;
    if (file_exists(path)) CM_TRY(cm_file_read_all(&bytes, &size, path, TRAIN_LOG_MAX_BYTES));
    const char *text = bytes;
    size_t header = strlen(TRAIN_LOG_HEADER), old_header = strlen(TRAIN_LOG_HEADER_V1);
    int old = size >= old_header && memcmp(text, TRAIN_LOG_HEADER_V1, old_header) == 0;
    if (old) header = old_header;
    else if (size < header || memcmp(text, TRAIN_LOG_HEADER, header) != 0) size = 0;
    char *kept = cm_malloc(strlen(TRAIN_LOG_HEADER) + size + 2 * step + 1, 1);
    if (!kept) {
        cm_free(bytes);
        return cm_error_set(CM_ERR_NOMEM, "%s: %zu bytes", path, size);
    }
    size_t used = (size_t)sprintf(kept, "%s", TRAIN_LOG_HEADER);
    for (size_t at = header; at < size && rows < step;) {
        const char *newline = memchr(text + at, '\n', size - at);
        size_t length = newline ? (size_t)(newline - (text + at)) : 0;
        char line[TRAIN_LOG_LINE_MAX];
        size_t k;
        double loss, elapsed;
        if (!newline || length >= sizeof line) break;
        memcpy(line, text + at, length);
        line[length] = '\0';
        if (sscanf(line, "%zu,%lf,%*[^,],%lf", &k, &loss, &elapsed) != 3 || k != rows + 1) break;
        plot_add(s, k, loss);
        s->elapsed_offset = elapsed;
        used += (size_t)sprintf(kept + used, "%s%s\n", line, old ? ",," : "");
        rows++;
        at += length + 1;
    }
    cm_status status = cm_file_write_atomic(path, kept, used);
    cm_free(kept);
    cm_free(bytes);
    CM_TRY(status);
    if (rows < step && !s->o->quiet)
        fprintf(stderr, "cm train: note: %s held rows for steps 1..%zu only; steps %zu..%zu are "
                        "missing from it\n", path, rows, rows + 1, step);
    s->log = fopen(path, "a");
    if (!s->log) return cm_error_set(CM_ERR_IO, "%s: cannot append: %s", path, strerror(errno));
    return CM_OK;
}

/* model.safetensors, config.json and loss.png of a finished run. */
static cm_status write_outputs(train_session *s) {
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", s->dir);
    const char *keys[] = {"cm.command"}, *values[] = {s->o->command};
    CM_TRY(cm_model_save_annotated(cm_trainer_model(s->trainer), path, keys, values,
                                   s->o->command ? 1 : 0));
    snprintf(path, sizeof path, "%s/config.json", s->dir);
    CM_TRY(write_config_json(path, s->config, cm_data_describe(s->data)));
    if (s->plot_count == 0) return CM_OK;
    snprintf(path, sizeof path, "%s/loss.png", s->dir);
    return cm_plot_line_png(path, s->plot_step, s->plot_loss, s->plot_count, "training loss",
                            "step", "loss", 1);
}

/* ---------------------------------------------------------------- --eval-every */

/* Draw the fixed reference of the evaluation (child 0 of the EVAL stream of the run's seed) and
 * a second sample of the data (child 1) for the floor: the sliced W1 two draws of the data
 * themselves are apart at this size. */
static cm_status eval_init(train_eval *e, size_t every, const cm_data *data,
                           const cm_train_config *c) {
    *e = (train_eval){.every = every, .last = NAN};
    if (!every) return CM_OK;
    e->n = TRAIN_EVAL_POINTS;
    e->dim = c->network.dim;
    e->seed = c->seed;
    e->reference = cm_malloc(e->n * e->dim, sizeof(double));
    e->samples = cm_malloc(e->n * e->dim, sizeof(double));
    if (!e->reference || !e->samples) return cm_error_set(CM_ERR_NOMEM, "--eval-every: samples");
    cm_rng root, stream, first, second;
    cm_rng_init(&root, c->seed);
    cm_rng_fork(&stream, &root, CM_STREAM_EVAL);
    cm_rng_fork(&first, &stream, 0);
    cm_rng_fork(&second, &stream, 1);
    cm_data_sample(data, &first, e->n, e->reference);
    cm_data_sample(data, &second, e->n, e->samples);
    const cm_network_config *net = &c->network;
    if (net->image_channels == 1 || net->image_channels == 3)
        e->channels = net->image_channels, e->height = net->image_height,
        e->width = net->image_width;
    return cm_metrics_sliced_w1(&e->floor, e->reference, e->n, e->samples, e->n, e->dim,
                                TRAIN_EVAL_PROJECTIONS, e->seed);
}

/* DIR/previews/step-XXXXXXXX.png: the first 64 samples of the evaluation just run (fixed noise:
 * the same seed every time, so the grid changes only when the model does). */
static cm_status write_preview(const train_session *s, size_t step) {
    const train_eval *e = &s->eval;
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/step-%08zu.png", s->dir, TRAIN_PREVIEW_DIR, step);
    size_t shown = e->n < TRAIN_PREVIEW_IMAGES ? e->n : TRAIN_PREVIEW_IMAGES;
    return cm_image_write_grid(path, e->samples, shown, e->channels, e->height, e->width,
                               TRAIN_PREVIEW_COLUMNS, TRAIN_PREVIEW_PADDING);
}

/* The previews' folder of an image run with --eval-every (created when missing). */
static cm_status make_preview_directory(const train_session *s) {
    if (!s->eval.every || !s->eval.channels) return CM_OK;
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->dir, TRAIN_PREVIEW_DIR);
    return cli_make_directory(path);
}

/* One-step samples of the evaluation weights (a dsm model: its default Heun sampler), always with
 * the same noise, against the fixed reference: a value that moves only when the model does.
 * Samples that are not finite give infinity (the run goes on). */
static cm_status eval_run(train_eval *e, const cm_model *model) {
    if (model->config.method.kind == CM_METHOD_DSM) {
        cm_diffusion_options o = cm_diffusion_options_for_model(model);
        CM_TRY(cm_diffusion_sample_model(e->samples, model, &o, e->n, e->seed, NULL));
    } else {
        CM_TRY(cm_sample(e->samples, model, NULL, 0, e->n, e->seed));
    }
    for (size_t i = 0; i < e->n * e->dim; i++)
        if (!isfinite(e->samples[i])) {
            e->last = INFINITY;
            return CM_OK;
        }
    return cm_metrics_sliced_w1(&e->last, e->samples, e->n, e->reference, e->n, e->dim,
                                TRAIN_EVAL_PROJECTIONS, e->seed);
}

/* ---------------------------------------------------------------- the loop */

static void progress(const cm_train_report *r, size_t total, size_t session_steps,
                     double elapsed, double smoothed, const train_eval *e, int terminal) {
    double rate = elapsed > 0 ? (double)session_steps / elapsed : 0.0;
    double eta = rate > 0 ? (double)(total - r->step) / rate : 0.0;
    char quality[64] = "";
    if (e->every && !isnan(e->last))
        snprintf(quality, sizeof quality, " sw1 %.3g (%.2gx floor)", e->last, e->last / e->floor);
    if (terminal) {
        int width = 30, filled = (int)(width * (double)r->step / (double)total);
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu loss %.4g%s  %.1f steps/s  ETA %d:%02d ", filled,
                "##############################", width - filled, "", r->step, total, smoothed,
                quality, rate, (int)eta / 60, (int)eta % 60);
        if (r->step == total) fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "step %zu/%zu loss %.6g lr %.3g levels %zu%s %.1f steps/s elapsed %.1fs "
                "ETA %d:%02d\n", r->step, total, smoothed, r->learning_rate, r->levels, quality,
                rate, elapsed, (int)eta / 60, (int)eta % 60);
    }
}

/* Where the last good state is, for the message of a failed run. */
static void describe_saved(char *out, size_t capacity, const train_session *s) {
    if (s->saved_step == SIZE_MAX)
        snprintf(out, capacity, "no checkpoint was saved before it");
    else
        snprintf(out, capacity, "the last good checkpoint is %s/%s (step %zu)", s->dir,
                 CM_CHECKPOINT_RUN_FILE, s->saved_step);
}

/* One row of train.csv; sw1 and its floor only on the steps evaluated. */
static void log_row(train_session *s, const cm_train_report *r, double elapsed, int evaluated) {
    fprintf(s->log, "%zu,%.9g,%.6g,%.4f,%.6g,%zu,", r->step, r->loss, r->learning_rate,
            s->elapsed_offset + elapsed, r->grad_norm, r->levels);
    if (evaluated) fprintf(s->log, "%.6g,%.6g\n", s->eval.last, s->eval.floor);
    else fputs(",\n", s->log);
}

/* Steps until the end, a non-finite loss, a failed save or a signal; then the exit code. After
 * every step the processes agree whether any caught a signal (comm->any), so that all stop after
 * the same step; rank 0 logs, evaluates, saves and prints. */
static int run_loop(train_session *s) {
    const char *command = "train";
    const cm_train_config *c = s->config;
    const cm_comm *comm = cli_dist_comm();
    size_t start = cm_trainer_steps_done(s->trainer);
    int terminal = isatty(2) && !s->o->quiet, stop = 0;
    double begin = cli_seconds(), last_print = 0.0, smoothed = NAN;
    cm_status status = CM_OK;
    install_signal_handlers();
    for (size_t k = start; k < c->steps && !stop; k++) {
        cm_train_report report;
        status = cm_trainer_step(s->trainer, &report);
        if (status != CM_OK) break;
        stop = caught_signal != 0;
        if ((status = comm->any(comm, &stop)) != CM_OK) break;
        if (!s->writer) continue;
        int last = report.step == c->steps;
        int evaluated = s->eval.every && (report.step % s->eval.every == 0 || last);
        if (evaluated) status = eval_run(&s->eval, cm_trainer_model(s->trainer));
        if (status == CM_OK && evaluated && s->eval.channels)
            status = write_preview(s, report.step);
        if (status != CM_OK) break;
        double elapsed = cli_seconds() - begin;
        log_row(s, &report, elapsed, evaluated);
        plot_add(s, report.step, report.loss);
        smoothed = isnan(smoothed) ? report.loss
                                   : TRAIN_SMOOTHING * smoothed + (1 - TRAIN_SMOOTHING) * report.loss;
        if (s->o->save_every && report.step % s->o->save_every == 0 && !last) {
            status = save_checkpoint(s);
            if (status != CM_OK) break;
        }
        if (s->o->quiet) continue;
        if (terminal ? (elapsed - last_print > 0.2 || last)
                     : (report.step % (c->steps / 10 ? c->steps / 10 : 1) == 0 || last)) {
            progress(&report, c->steps, report.step - start, elapsed, smoothed, &s->eval, terminal);
            last_print = elapsed;
        }
    }
    if (terminal && cm_trainer_steps_done(s->trainer) < c->steps) fprintf(stderr, "\n");
    size_t done = cm_trainer_steps_done(s->trainer);
    char saved[TRAIN_PATH_MAX + 64];
    if (status == CM_ERR_NONFINITE) { /* every process sees it at the same step */
        cli_dist_collective(0);
        describe_saved(saved, sizeof saved, s);
        if (s->writer)
            fprintf(stderr, "cm train: error: %s: %s; %s\n", cm_status_name(status),
                    cm_error_detail(), saved);
        return CLI_RUNTIME_ERROR;
    }
    if (status != CM_OK) return cli_fail(command, status);
    if (done < c->steps) { /* stopped by a signal, on every process after this step */
        int signal_number = cli_dist_agree(caught_signal); /* some process caught it */
        cli_dist_collective(0);
        if (!s->writer) return TRAIN_SIGNAL_EXIT_BASE + signal_number;
        if (s->saved_step != done) status = save_checkpoint(s);
        if (status != CM_OK) return cli_fail(command, status);
        fprintf(stderr, "cm train: stopped by %s after step %zu of %zu; saved %s; continue with: "
                        "cm train --resume %s\n", signal_name(signal_number), done, c->steps,
                s->saved_path, s->dir);
        return TRAIN_SIGNAL_EXIT_BASE + signal_number;
    }
    if (!s->writer) return CLI_OK;
    if (s->saved_step != done) status = save_checkpoint(s);
    if (status == CM_OK && (fclose(s->log) != 0))
        status = cm_error_set(CM_ERR_IO, "%s/train.csv: write failed", s->dir);
    s->log = NULL;
    if (status == CM_OK) status = write_outputs(s);
    if (status != CM_OK) return cli_fail(command, status);
    double elapsed = cli_seconds() - begin;
    if (!s->o->quiet && done == start)
        fprintf(stderr, "cm train: the run was already complete (step %zu of %zu); rewrote its "
                        "outputs in %s\n", done, c->steps, s->dir);
    else if (!s->o->quiet)
        fprintf(stderr, "cm train: %zu steps in %.1f s (%.1f steps/s), final loss (smoothed) %.4g\n"
                        "cm train: wrote %s/model.safetensors, train.csv, config.json, loss.png, "
                        "checkpoint.safetensors\n",
                done - start, elapsed, elapsed > 0 ? (double)(done - start) / elapsed : 0.0,
                smoothed, s->dir);
    if (!s->o->quiet && s->eval.every && !isnan(s->eval.last))
        fprintf(stderr, "cm train: sliced W1 of %zu one-step samples at step %zu: %.4g, floor "
                        "%.4g (%.2fx)\n", s->eval.n, done, s->eval.last, s->eval.floor,
                s->eval.last / s->eval.floor);
    char cost[512];
    cli_dist_cost_text(cost, sizeof cost, done - start);
    if (!s->o->quiet && cost[0]) fprintf(stderr, "cm train: communication, %s\n", cost);
    return CLI_OK;
}

/* ---------------------------------------------------------------- fresh and resumed runs */

/* 1 when the folder holds only entries whose names start with `prefix` (and . and ..). */
static int folder_of(const char *path, const char *prefix) {
    DIR *folder = opendir(path);
    if (!folder) return 0;
    int only = 1;
    for (struct dirent *e; (e = readdir(folder));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strncmp(e->d_name, prefix, strlen(prefix)))
            only = 0;
    closedir(folder);
    return only;
}

/* A new run's previews replace an earlier run's: DIR/previews/step-*.png are deleted (the folder
 * holds nothing else, or it was not accepted as cm's). */
static cm_status clear_previews(const char *dir) {
    char path[TRAIN_PATH_MAX], file[TRAIN_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, TRAIN_PREVIEW_DIR);
    DIR *folder = opendir(path);
    if (!folder) return CM_OK;
    cm_status status = CM_OK;
    for (struct dirent *e; (e = readdir(folder)) && status == CM_OK;) {
        if (strncmp(e->d_name, "step-", 5) != 0) continue;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        if (unlink(file) != 0)
            status = cm_error_set(CM_ERR_IO, "%s: cannot delete: %s", file, strerror(errno));
    }
    closedir(folder);
    return status;
}

/* 1 for what a cm run leaves in its directory before its first checkpoint: the lock, a
 * train.csv that starts with cm's header, a checkpoints/ folder of numbered checkpoints only, a
 * previews/ folder of numbered previews only. */
static int cm_leftover(const char *dir, const char *name) {
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (strcmp(name, TRAIN_LOCK_FILE) == 0) return 1;
    if (strcmp(name, "train.csv") == 0) {
        char head[64] = "";
        FILE *file = fopen(path, "r");
        size_t got = file ? fread(head, 1, sizeof head - 1, file) : 0;
        if (file) fclose(file);
        head[got] = '\0';
        return strncmp(head, TRAIN_LOG_HEADER_V1, strlen(TRAIN_LOG_HEADER_V1) - 1) == 0;
    }
    if (strcmp(name, CM_CHECKPOINT_RUN_DIR) != 0 && strcmp(name, TRAIN_PREVIEW_DIR) != 0)
        return 0;
    return folder_of(path, "step-");
}

/* The entries of DIR that a cm run did not leave, named in out[capacity] (the first few);
 * returns their count. */
static size_t foreign_entries(char *out, size_t capacity, const char *dir) {
    DIR *folder = opendir(dir);
    size_t count = 0, used = 0;
    out[0] = '\0';
    if (!folder) return 0;
    for (struct dirent *e; (e = readdir(folder));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || cm_leftover(dir, e->d_name))
            continue;
        if (count < TRAIN_OUT_LISTED && used < capacity)
            used += (size_t)snprintf(out + used, capacity - used, "%s%s", count ? ", " : "",
                                     e->d_name);
        count++;
    }
    closedir(folder);
    if (count > TRAIN_OUT_LISTED && used < capacity)
        snprintf(out + used, capacity - used, " and %zu more", count - TRAIN_OUT_LISTED);
    return count;
}

/* A new run writes into --out only when it holds nothing of value: no run (finished or not, or
 * a checkpoint that cannot be read) and no file cm did not write, unless --force. Then the
 * previous run's checkpoints are deleted (other files are left; cm's outputs are replaced when
 * the run writes them). */
static int check_out_directory(const train_options *o) {
    const char *command = "train";
    char path[TRAIN_PATH_MAX], listed[512];
    snprintf(path, sizeof path, "%s/%s", o->out, CM_CHECKPOINT_RUN_FILE);
    int force = o->force || o->overwrite;
    if (!force && file_exists(path)) {
        cm_checkpoint *previous = NULL;
        cm_status status = cm_checkpoint_read(&previous, path);
        const cm_train_config *c = previous ? cm_checkpoint_config(previous) : NULL;
        size_t step = previous ? cm_checkpoint_step(previous) : 0, steps = c ? c->steps : 0;
        char what[768] = "";
        if (c)
            snprintf(what, sizeof what, "%s on %s", cm_method_name(c->method.kind),
                     cm_checkpoint_data_source(previous));
        cm_checkpoint_free(previous);
        if (status != CM_OK)
            return cli_usage_error(command, "%s holds a checkpoint that cannot be read (%s); pass "
                                   "--force to start a new run there", o->out, cm_error_detail());
        if (step < steps)
            return cli_usage_error(command, "%s holds an unfinished run (%s, step %zu of %zu): "
                                   "continue it with --resume %s, or pass --force to start "
                                   "again", o->out, what, step, steps, o->out);
        return cli_usage_error(command, "%s holds a finished run (%s, %zu steps): pass --force to "
                               "replace it, choose another --out, or train it further in a new "
                               "run with --init-from %s", o->out, what, steps, o->out);
    }
    size_t foreign = force ? 0 : foreign_entries(listed, sizeof listed, o->out);
    if (foreign)
        return cli_usage_error(command, "%s holds %zu file%s not written by a cm run (%s): choose "
                               "another --out, or pass --force to write the run there (cm's own "
                               "files are replaced: model.safetensors, train.csv, config.json, "
                               "loss.png, checkpoints, previews)", o->out, foreign,
                               foreign > 1 ? "s" : "", listed);
    cm_status status = cm_checkpoint_clear_run(o->out);
    if (status == CM_OK) status = clear_previews(o->out);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

/* --init-from: the run's network must be the model's (its weights are the start), and its data
 * the model's (the model's transform is kept). */
static cm_status check_init_model(const cm_model *init, const char *path,
                                  const cm_train_config *config, const cm_data *data,
                                  const cm_transform *fitted) {
    cm_train_config probe = init->config;
    probe.network = config->network;
    if (cm_train_config_diff(&probe, &init->config) != CM_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", cm_error_detail());
        return cm_error_set(CM_ERR_INVALID, "--init-from %s: %s (a run started from a model keeps "
                            "its network)", path, detail);
    }
    if (cm_method_noise_levels(config->method.kind) != cm_method_noise_levels(init->config.method.kind))
        return cm_error_set(CM_ERR_INVALID, "--init-from %s: a %s model cannot start a %s run (the "
                            "networks take %zu and %zu noise levels)", path,
                            cm_method_name(init->config.method.kind),
                            cm_method_name(config->method.kind),
                            cm_method_noise_levels(init->config.method.kind),
                            cm_method_noise_levels(config->method.kind));
    if (init->data_source[0] && !same_training_data(init->data_source, &init->transform, data, fitted))
        return cm_error_set(CM_ERR_INVALID, "--init-from %s: the model was trained on '%s', --data "
                            "is '%s' (a run started from a model keeps its data and transform)",
                            path, init->data_source, cm_data_describe(data));
    return CM_OK;
}

/* Put the model's weights into a fresh trainer as its step-0 state: weights, evaluation EMA and
 * target are the model's (evaluation) weights, the Adam moments zero, the transform the
 * model's; the schedule, warm-up and curriculum start again at step 0. */
static cm_status start_from_model(cm_trainer *trainer, const cm_model *init) {
    cm_trainer_state state;
    cm_trainer_get_state(&state, trainer);
    float *zeros = cm_calloc(state.param_count, sizeof(float));
    if (!zeros) return cm_error_set(CM_ERR_NOMEM, "--init-from: Adam moments");
    state.params = init->params;
    state.ema = init->params;
    if (state.target) state.target = init->params;
    state.adam_m = zeros;
    state.adam_v = zeros;
    state.transform = &init->transform;
    cm_status status = cm_trainer_set_state(trainer, &state);
    cm_free(zeros);
    return status;
}

/* The data of a fresh run, and the session up to its first step (init weights, teacher; on
 * rank 0 the evaluation and train.csv). */
static cm_status start_session(train_session *s, const train_options *o, cm_train_config *config,
                               const cm_data *data, const cm_model *init) {
    CM_TRY(session_init(s, o, o->out, config, data));
    CM_TRY(cm_trainer_init_comm(&s->trainer, config, data, cli_dist_comm()));
    if (init) {
        CM_TRY(check_init_model(init, o->init_from, config, data,
                                &cm_trainer_model(s->trainer)->transform));
        CM_TRY(start_from_model(s->trainer, init));
    }
    CM_TRY(attach_teacher(s, 1));
    if (init && o->teacher_model &&
        !same_transform(&cm_trainer_model(s->trainer)->transform, &init->transform))
        return cm_error_set(CM_ERR_INVALID, "--init-from %s and --teacher-model %s standardise the "
                            "data differently (trained with other seeds?): start from the teacher "
                            "itself or from a model trained with its seed", o->init_from,
                            s->teacher_path);
    if (!s->writer) return CM_OK;
    CM_TRY(eval_init(&s->eval, o->eval_every, data, config));
    CM_TRY(make_preview_directory(s));
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/train.csv", o->out);
    if (!(s->log = fopen(path, "w"))) return cm_error_set(CM_ERR_IO, "cannot write %s", path);
    fputs(TRAIN_LOG_HEADER, s->log);
    return CM_OK;
}

/* "R processes x " for the start line of a run over several processes, "" for one. */
static void processes_text(char *out, size_t capacity) {
    out[0] = '\0';
    if (cli_dist_size() > 1) snprintf(out, capacity, "%zu processes x ", cli_dist_size());
}

/* Every process computes whole row blocks: a run of `blocks` runs on at most that many. */
static int check_processes(size_t blocks, const char *resumed) {
    size_t processes = cli_dist_size();
    if (processes <= blocks) return CLI_OK;
    if (resumed)
        return cli_usage_error("train", "--resume %s: the run has %zu row blocks, too few for %zu "
                               "processes (each computes whole blocks; at most %zu processes)",
                               resumed, blocks, processes, blocks);
    return cli_usage_error("train", "--blocks %zu: %zu processes need at least %zu row blocks (each "
                           "computes whole blocks; the block count is part of the run and of its "
                           "bits: docs/distributed.md)", blocks, processes, processes);
}

/* A fresh run up to its first step: the data, the trainer and the teacher on every process; on
 * rank 0 the directory (created, locked, checked) and train.csv. *data and *config outlive the
 * session (cmd_train frees them). */
static int fresh_setup(train_session *s, cm_data **data, cm_train_config *config,
                       const train_options *o, const cm_model *init) {
    const char *command = "train";
    int writer = cli_dist_rank() == 0;
    if (!o->data) return cli_usage_error(command, "--data is required");
    if (!o->out) return cli_usage_error(command, "--out is required");
    if (o->threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", o->threads);
    int result = check_processes(o->config.blocks, NULL);
    if (result != CLI_OK) return result;
    cli_set_threads(o->threads);
    cm_status status = cm_data_open_with(data, o->data, &(cm_data_options){.columns = o->columns});
    if (status != CM_OK) return cli_fail(command, status);
    *config = o->config;
    config->network.dim = cm_data_dim(*data);
    cm_data_image_shape(*data, &config->network.image_channels, &config->network.image_height,
                        &config->network.image_width);
    status = cm_train_config_check(config);
    if (status == CM_OK && writer) status = cli_make_directory(o->out);
    if (status == CM_OK && writer) status = lock_directory(o->out);
    if (status != CM_OK) return cli_fail(command, status);
    if (writer && (result = check_out_directory(o)) != CLI_OK) return result;
    status = start_session(s, o, config, *data, init);
    if (status != CM_OK) return cli_fail(command, status);
    char processes[64];
    processes_text(processes, sizeof processes);
    if (!o->quiet)
        fprintf(stderr, "cm train: %s on %s (D = %zu), %zu steps, batch %zu in %zu blocks, %s "
                        "network of %zu parameters%s%s, %s%zu thread(s)\n",
                cm_method_name(config->method.kind), cm_data_describe(*data), config->network.dim,
                config->steps, config->batch, config->blocks, config->network.type->name,
                cm_model_param_count(cm_trainer_model(s->trainer)), init ? " from " : "",
                init ? o->init_from : "", processes, o->threads);
    return CLI_OK;
}

/* A cm.cli.* setting stored in the checkpoint, when it parses as an integer >= minimum. */
static void stored_setting(size_t *out, const cm_checkpoint *ck, const char *key, size_t minimum) {
    const char *text = cm_checkpoint_metadata(ck, key);
    char *end;
    if (!text || !*text || *text == '-') return;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (*end == '\0' && errno == 0 && value >= minimum && value <= ((uint64_t)1 << 40))
        *out = (size_t)value;
}

static int same_directory(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Options for the resumed run: the stored run's values, then the command line again on top. */
static int resume_options(train_options *o, const cm_checkpoint *ck, int argc, char **argv) {
    const train_options fresh = *o;
    o->config = *cm_checkpoint_config(ck);
    o->data = cm_checkpoint_data_source(ck);
    o->threads = 1;
    o->eval_every = 0;
    size_t allow = 0;
    stored_setting(&o->threads, ck, "cm.cli.threads", 1);
    stored_setting(&o->save_every, ck, "cm.cli.save_every", 0);
    stored_setting(&o->keep, ck, "cm.cli.keep", 1);
    stored_setting(&o->eval_every, ck, "cm.cli.eval_every", 0);
    stored_setting(&allow, ck, "cm.cli.allow_other_teacher_data", 0);
    o->allow_other_teacher_data = allow != 0;
    /* copied: the checkpoint is freed before the loop, which saves the path again */
    static char teacher_path[TRAIN_PATH_MAX];
    const char *teacher = cm_checkpoint_metadata(ck, "cm.cli.teacher_model");
    snprintf(teacher_path, sizeof teacher_path, "%s", teacher ? teacher : "");
    o->teacher_model = teacher_path[0] ? teacher_path : NULL;
    const char *stored_command = cm_checkpoint_metadata(ck, "cm.cli.command");
    cm_free(o->command); /* the run's command is the one that started it */
    o->command = NULL;
    if (stored_command && (o->command = cm_malloc(strlen(stored_command) + 1, 1)))
        strcpy(o->command, stored_command);
    o->out = NULL;
    o->network = NULL;
    int parsed = parse_options(o, argc, argv);
    if (parsed != CLI_OK) return parsed;
    if (o->network && strcmp(o->network, o->config.network.type->name) != 0)
        return cli_usage_error("train", "--resume %s: --network is %s, the stored run has %s",
                               fresh.resume, o->network, o->config.network.type->name);
    if (o->overwrite || o->force)
        return cli_usage_error("train", "--%s and --resume contradict each other",
                               o->force ? "force" : "overwrite");
    if (o->init_from)
        return cli_usage_error("train", "--init-from starts a new run; --resume continues one");
    if (o->columns && o->data == cm_checkpoint_data_source(ck))
        return cli_usage_error("train", "--resume %s: the run's data '%s' names its columns; "
                               "--columns goes with --data (when the file moved)", fresh.resume,
                               o->data);
    if (o->out && !same_directory(o->out, fresh.resume))
        return cli_usage_error("train", "--out %s is not the resumed directory %s (a resumed run "
                               "writes into its own directory)", o->out, fresh.resume);
    if (o->threads > 64) return cli_usage_error("train", "--threads %zu: at most 64", o->threads);
    return CLI_OK;
}

/* The stored run's step count is part of it: say why another one is refused, and what to do. */
static int refuse_other_steps(const char *dir, size_t given, size_t stored, size_t done) {
    return cli_usage_error("train", "--resume %s: --steps %zu, but the run has %zu steps (%zu "
                           "done): its curricula (N(k) of ct/ict, the lhw stages) and its cosine "
                           "learning rate are functions of k / K, so another K would change "
                           "every step already taken; to train further, start a new run from "
                           "its weights with a fresh schedule: cm train --init-from %s --steps "
                           "%zu --out NEW", dir, given, stored, done, dir, given);
}

/* The stored run's configuration against the command line's (o->config after resume_options). */
static int check_resumed_config(const train_options *o, const cm_checkpoint *ck) {
    const cm_train_config *stored = cm_checkpoint_config(ck);
    cm_train_config config = o->config;
    cm_status status = cm_train_config_check(&config);
    if (status != CM_OK) return cli_fail("train", status);
    if (config.steps != stored->steps)
        return refuse_other_steps(o->resume, config.steps, stored->steps, cm_checkpoint_step(ck));
    if (cm_train_config_diff(&config, stored) != CM_OK)
        return cli_usage_error("train", "--resume %s: %s (a resumed run keeps its configuration; "
                               "start a new run to change it)", o->resume, cm_error_detail());
    return check_processes(config.blocks, o->resume);
}

/* The data, the trainer restored from the checkpoint and the teacher on every process; on rank 0
 * the evaluation and train.csv cut back to the checkpoint's step. */
static cm_status resume_session(train_session *s, cm_data **data, const cm_train_config *config,
                                const train_options *o, const cm_checkpoint *ck) {
    cm_status status = cm_data_open_with(data, o->data, &(cm_data_options){.columns = o->columns});
    if (status != CM_OK && o->data == cm_checkpoint_data_source(ck)) {
        char detail[1024];
        snprintf(detail, sizeof detail, "%s", cm_error_detail());
        return cm_error_set(status, "%s (the run's data; give its new place with --data)", detail);
    }
    CM_TRY(status);
    CM_TRY(session_init(s, o, o->resume, config, *data));
    CM_TRY(cm_checkpoint_restore_comm(&s->trainer, ck, *data, cli_dist_comm()));
    CM_TRY(attach_teacher(s, 0));
    if (!s->writer) return CM_OK;
    CM_TRY(eval_init(&s->eval, o->eval_every, *data, config));
    CM_TRY(make_preview_directory(s));
    return resume_log(s, cm_checkpoint_step(ck));
}

/* A resumed run up to its next step: rank 0 locks the directory; every process reads the
 * checkpoint (the run's configuration, the command line on top) and restores it. */
static int resume_setup(train_session *s, cm_data **data, cm_train_config *config,
                        train_options *o, int argc, char **argv) {
    const char *command = "train", *dir = o->resume;
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CM_CHECKPOINT_RUN_FILE);
    struct stat info;
    if (stat(dir, &info) != 0 || !S_ISDIR(info.st_mode))
        return cli_fail(command, cm_error_set(CM_ERR_IO, "--resume %s: no such run directory",
                                              dir));
    cm_status status = cli_dist_rank() == 0 ? lock_directory(dir) : CM_OK;
    if (status != CM_OK) return cli_fail(command, status);
    if (!file_exists(path))
        return cli_fail(command, cm_error_set(CM_ERR_IO, "%s: no checkpoint to resume from "
                                              "(was the run started with this cm?)", path));
    cm_checkpoint *ck = NULL;
    status = cm_checkpoint_read(&ck, path);
    if (status != CM_OK) return cli_fail(command, status);
    int result = resume_options(o, ck, argc, argv);
    if (result == CLI_OK) result = check_resumed_config(o, ck);
    if (result == CLI_OK) {
        *config = o->config;
        cli_set_threads(o->threads);
        status = resume_session(s, data, config, o, ck);
        if (status != CM_OK) result = cli_fail(command, status);
    }
    if (result == CLI_OK) {
        s->saved_step = cm_checkpoint_step(ck);
        snprintf(s->saved_path, sizeof s->saved_path, "%s", path);
        char processes[64];
        processes_text(processes, sizeof processes);
        if (!o->quiet)
            fprintf(stderr, "cm train: resuming %s at step %zu of %zu (%s on %s, %s%zu "
                            "thread(s))\n", dir, s->saved_step, config->steps,
                    cm_method_name(config->method.kind), cm_data_describe(*data), processes,
                    o->threads);
    }
    cm_checkpoint_free(ck);
    return result;
}

/* --init-from: the model, and the options again with its configuration and data as defaults
 * (a setting given on the command line wins; with another --method, that method's defaults for
 * the method and optimiser settings). */
static int init_options(train_options *o, cm_model *init, cm_method method, int argc,
                        char **argv) {
    cm_status status = cli_model_load(init, o->init_from);
    if (status != CM_OK) return cli_fail("train", status);
    const char *network = o->network;
    o->config = init->config;
    if (cli_find_value(argc, argv, 2, "method") && method != init->config.method.kind) {
        /* another method: its own defaults for the method and the optimiser */
        cm_train_config other = cm_train_config_default_network(method, init->config.network.type,
                                                                init->config.network.dim);
        o->config.method = other.method;
        o->config.optimizer = other.optimizer;
    }
    o->data = init->data_source[0] ? init->data_source : NULL;
    o->network = NULL;
    int parsed = parse_options(o, argc, argv);
    if (parsed != CLI_OK) return parsed;
    if (network && strcmp(network, init->config.network.type->name) != 0)
        return cli_usage_error("train", "--init-from %s: --network is %s, the model's is %s",
                               o->init_from, network, init->config.network.type->name);
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    cm_method method;
    const cm_network_type *type;
    int scanned = scan_method_and_network(&method, &type, argc, argv);
    if (scanned != CLI_OK) return scanned;
    train_options o = {.threads = 1, .save_every = TRAIN_SAVE_EVERY_DEFAULT,
                       .keep = TRAIN_KEEP_DEFAULT};
    /* the dimension comes from the data (fresh runs) or the checkpoint (resumed ones) */
    o.config = cm_train_config_default_network(method, type, 1);
    int result = parse_options(&o, argc, argv); /* the same on every process: no agreement */
    if (result != CLI_OK) return result;
    o.quiet |= cli_dist_rank() != 0; /* rank 0 prints */
    o.command = cli_command_line(argc, argv);
    cm_model init = {0};
    cm_train_config config;
    cm_data *data = NULL;
    train_session s = {0};
    if (o.resume) {
        result = resume_setup(&s, &data, &config, &o, argc, argv);
    } else {
        if (o.init_from) result = init_options(&o, &init, method, argc, argv);
        if (result == CLI_OK) result = fresh_setup(&s, &data, &config, &o, o.init_from ? &init : NULL);
    }
    /* every process reaches this point, whatever failed: the steps start only if all are ready */
    result = cli_dist_agree(result);
    if (result == CLI_OK) {
        cli_dist_collective(1);
        result = run_loop(&s);
    }
    session_free(&s);
    cm_data_free(data);
    cm_model_free(&init);
    cm_free(o.command);
    return result;
}
