/* cmd_train.c: `cm train`: train a consistency model (or a dsm denoiser) and write DIR/model.safetensors,
 * DIR/train.csv (step, loss, lr, elapsed, grad_norm, levels), DIR/config.json, DIR/loss.png and
 * checkpoints (DIR/checkpoints/step-N.safetensors every --save-every steps and at the end, the
 * newest --keep of them kept, DIR/checkpoint.safetensors naming the newest).
 * `--resume DIR` continues a run bit-exactly from its checkpoint with the stored configuration.
 * SIGINT/SIGTERM: the handler only sets a flag; the loop saves a checkpoint after the current
 * step and exits with 128 + the signal number. A second signal stops at once.
 * Progress: a bar with loss, steps/s and ETA on a terminal, plain lines every 10% otherwise.
 * cd and cd2 (a two-time model g(x, t, s), distilled the same way): the teacher denoiser is a dsm model (--teacher-model, whose transform the run adopts) or
 * the exact law of a gauss:/gmm: source standardised with the run's transform (law.h); the
 * teacher's path is kept in the checkpoint (cm.cli.teacher_model) for --resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/checkpoint.h"
#include "cm/config.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/io.h"
#include "cm/law.h"
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
#define TRAIN_LOG_HEADER "step,loss,lr,elapsed,grad_norm,levels\n"
#define TRAIN_LOCK_FILE ".cm-train.lock"
#define TRAIN_SIGNAL_EXIT_BASE 128            /* exit status 128 + signal, as a shell reports it */
#define TRAIN_SMOOTHING 0.98                  /* EMA of the printed loss */

/* The command line: the run's configuration (every setting of its field tables: config.h,
 * network.h) and the settings of this program that are not part of the run. */
typedef struct {
    cm_train_config config;
    const char *data, *out, *resume, *teacher_model, *network;
    size_t threads, save_every, keep;
    int quiet, overwrite;
} train_options;

/* One run of the loop: what it writes to and what it remembers for the outputs. */
typedef struct {
    const train_options *o;
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
    char threads_text[32], save_every_text[32], keep_text[32]; /* cm.cli.* metadata */
    /* cd teacher: a dsm model or an exact law, owned here, outliving the trainer */
    cm_model teacher_model;
    cm_law *law, *law_standardised;
    cm_denoiser teacher;
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
        {"out", OPT_STRING, &o->out, "output directory (created) [required unless --resume]", 0, 0, 0},
        {"resume", OPT_STRING, &o->resume, "continue the run in DIR from DIR/checkpoint.safetensors, with its stored configuration", 0, 0, 0},
        {"save-every", OPT_SIZE, &o->save_every, "checkpoint every N steps (0: only at the end and on SIGINT/SIGTERM)", 0, 0, 0},
        {"keep", OPT_SIZE, &o->keep, "numbered checkpoints kept in DIR/checkpoints (the newest)", 1, 0, 0},
        {"overwrite", OPT_FLAG, &o->overwrite, "start a new run in a directory holding an unfinished one", 0, 0, 0},
        {"threads", OPT_SIZE, &o->threads, "threads of the pool (resume: the run's, unless given); results do not depend on it", 1, 0, 0},
        {"teacher-model", OPT_STRING, &o->teacher_model, "cd, cd2: teacher = this dsm model (default: the exact law of a gauss:/gmm: source)", 0, 0, 0},
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
    "Methods: lhw ([LHW] iterative consistency learning), ct ([CM] consistency training),\n"
    "ict ([iCT]); dsm trains a denoiser (EDM), cd distils one into a consistency model\n"
    "([CM]), cd2 into a two-time model g(x, t, s) ([JHMZ] sampling).\n"
    "`cm train --resume DIR` continues a stopped run exactly (docs/checkpoints.md); flags that\n"
    "change the run must match the stored ones. Defaults below are those of the --method (and\n"
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
    *s = (train_session){.o = o, .dir = dir, .config = config, .data = data,
                         .saved_step = SIZE_MAX};
    s->plot_stride = (config->steps + TRAIN_PLOT_POINTS_MAX - 1) / TRAIN_PLOT_POINTS_MAX;
    s->plot_capacity = config->steps / s->plot_stride + 2;
    s->plot_step = cm_malloc(s->plot_capacity, sizeof(double));
    s->plot_loss = cm_malloc(s->plot_capacity, sizeof(double));
    if (!s->plot_step || !s->plot_loss) return cm_error_set(CM_ERR_NOMEM, "loss history");
    snprintf(s->threads_text, sizeof s->threads_text, "%zu", o->threads);
    snprintf(s->save_every_text, sizeof s->save_every_text, "%zu", o->save_every);
    snprintf(s->keep_text, sizeof s->keep_text, "%zu", o->keep);
    return CM_OK;
}

static void session_free(train_session *s) {
    if (s->log) fclose(s->log);
    cm_free(s->plot_step);
    cm_free(s->plot_loss);
    cm_trainer_free(s->trainer);
    cm_denoiser_free(&s->teacher);
    cm_model_free(&s->teacher_model);
    cm_law_free(s->law_standardised);
    cm_law_free(s->law);
}

/* cd, cd2: give the trainer its teacher (fresh: a dsm model's transform is adopted; resumed: the
 * checkpoint's transform, which is that one, stays). */
static cm_status attach_teacher(train_session *s, int fresh) {
    if (!cm_method_is_distillation(s->config->method.kind)) {
        if (s->o->teacher_model)
            return cm_error_set(CM_ERR_INVALID, "--teacher-model applies to --method cd and cd2");
        return CM_OK;
    }
    if (s->o->teacher_model) {
        CM_TRY(cm_model_load(&s->teacher_model, s->o->teacher_model));
        CM_TRY(cm_denoiser_from_model_rows(&s->teacher, &s->teacher_model,
                                           s->config->batch < CM_SAMPLER_CHUNK ? s->config->batch
                                                                               : CM_SAMPLER_CHUNK));
        return cm_trainer_set_teacher(s->trainer, &s->teacher,
                                      fresh ? &s->teacher_model.transform : NULL);
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
    const char *keys[] = {"cm.cli.threads", "cm.cli.save_every", "cm.cli.keep",
                          "cm.cli.teacher_model"};
    const char *values[] = {s->threads_text, s->save_every_text, s->keep_text,
                            s->o->teacher_model ? s->o->teacher_model : ""};
    CM_TRY(cm_checkpoint_save_run(s->saved_path, sizeof s->saved_path, s->dir, s->trainer,
                                  s->o->keep, keys, values, s->o->teacher_model ? 4 : 3));
    s->saved_step = cm_trainer_steps_done(s->trainer);
    return CM_OK;
}

/* train.csv of a resumed run: keep the header and the rows of steps 1..step in order (rows
 * after the checkpoint, and a row cut short by a kill, are dropped), rewrite it atomically and
 * reopen it for appending. The kept losses feed loss.png; the last elapsed time continues. */
static cm_status resume_log(train_session *s, size_t step) {
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/train.csv", s->dir);
    void *bytes = NULL;
    size_t size = 0, rows = 0;
    if (file_exists(path)) CM_TRY(cm_file_read_all(&bytes, &size, path, TRAIN_LOG_MAX_BYTES));
    const char *text = bytes;
    size_t header = strlen(TRAIN_LOG_HEADER), kept = header;
    if (size < header || memcmp(text, TRAIN_LOG_HEADER, header) != 0) size = 0;
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
        rows++;
        at += length + 1;
        kept = at;
    }
    cm_status status = cm_file_write_atomic(path, rows ? text : TRAIN_LOG_HEADER, kept);
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
    CM_TRY(cm_model_save(cm_trainer_model(s->trainer), path));
    snprintf(path, sizeof path, "%s/config.json", s->dir);
    CM_TRY(write_config_json(path, s->config, cm_data_describe(s->data)));
    if (s->plot_count == 0) return CM_OK;
    snprintf(path, sizeof path, "%s/loss.png", s->dir);
    return cm_plot_line_png(path, s->plot_step, s->plot_loss, s->plot_count, "training loss",
                            "step", "loss", 1);
}

/* ---------------------------------------------------------------- the loop */

static void progress(const cm_train_report *r, size_t total, size_t session_steps,
                     double elapsed, double smoothed, int terminal) {
    double rate = elapsed > 0 ? (double)session_steps / elapsed : 0.0;
    double eta = rate > 0 ? (double)(total - r->step) / rate : 0.0;
    if (terminal) {
        int width = 30, filled = (int)(width * (double)r->step / (double)total);
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu loss %.4g  %.1f steps/s  ETA %d:%02d ", filled,
                "##############################", width - filled, "", r->step, total, smoothed,
                rate, (int)eta / 60, (int)eta % 60);
        if (r->step == total) fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "step %zu/%zu loss %.6g lr %.3g levels %zu %.1f steps/s elapsed %.1fs\n",
                r->step, total, smoothed, r->learning_rate, r->levels, rate, elapsed);
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

/* Steps until the end, a non-finite loss, a failed save or a signal; then the exit code. */
static int run_loop(train_session *s) {
    const char *command = "train";
    const cm_train_config *c = s->config;
    size_t start = cm_trainer_steps_done(s->trainer);
    int terminal = isatty(2) && !s->o->quiet;
    double begin = cli_seconds(), last_print = 0.0, smoothed = NAN;
    cm_status status = CM_OK;
    install_signal_handlers();
    for (size_t k = start; k < c->steps && !caught_signal; k++) {
        cm_train_report report;
        status = cm_trainer_step(s->trainer, &report);
        if (status != CM_OK) break;
        double elapsed = cli_seconds() - begin;
        fprintf(s->log, "%zu,%.9g,%.6g,%.4f,%.6g,%zu\n", report.step, report.loss,
                report.learning_rate, s->elapsed_offset + elapsed, report.grad_norm,
                report.levels);
        plot_add(s, report.step, report.loss);
        smoothed = isnan(smoothed) ? report.loss
                                   : TRAIN_SMOOTHING * smoothed + (1 - TRAIN_SMOOTHING) * report.loss;
        int last = report.step == c->steps;
        if (s->o->save_every && report.step % s->o->save_every == 0 && !last) {
            status = save_checkpoint(s);
            if (status != CM_OK) break;
        }
        if (s->o->quiet) continue;
        if (terminal ? (elapsed - last_print > 0.2 || last)
                     : (report.step % (c->steps / 10 ? c->steps / 10 : 1) == 0 || last)) {
            progress(&report, c->steps, report.step - start, elapsed, smoothed, terminal);
            last_print = elapsed;
        }
    }
    if (terminal && cm_trainer_steps_done(s->trainer) < c->steps) fprintf(stderr, "\n");
    size_t done = cm_trainer_steps_done(s->trainer);
    char saved[TRAIN_PATH_MAX + 64];
    if (status == CM_ERR_NONFINITE) {
        describe_saved(saved, sizeof saved, s);
        fprintf(stderr, "cm train: error: %s: %s; %s\n", cm_status_name(status),
                cm_error_detail(), saved);
        return CLI_RUNTIME_ERROR;
    }
    if (status != CM_OK) return cli_fail(command, status);
    if (done < c->steps) { /* stopped by a signal */
        int signal_number = caught_signal;
        if (s->saved_step != done) status = save_checkpoint(s);
        if (status != CM_OK) return cli_fail(command, status);
        fprintf(stderr, "cm train: stopped by %s after step %zu of %zu; saved %s; continue with: "
                        "cm train --resume %s\n", signal_name(signal_number), done, c->steps,
                s->saved_path, s->dir);
        return TRAIN_SIGNAL_EXIT_BASE + signal_number;
    }
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
    return CLI_OK;
}

/* ---------------------------------------------------------------- fresh and resumed runs */

/* A new run may replace a finished one; an unfinished or unreadable one only with --overwrite. */
static int clear_previous_run(const train_options *o) {
    const char *command = "train";
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", o->out, CM_CHECKPOINT_RUN_FILE);
    if (file_exists(path) && !o->overwrite) {
        cm_checkpoint *previous = NULL;
        cm_status status = cm_checkpoint_read(&previous, path);
        size_t step = previous ? cm_checkpoint_step(previous) : 0;
        size_t steps = previous ? cm_checkpoint_config(previous)->steps : 0;
        cm_checkpoint_free(previous);
        if (status != CM_OK)
            return cli_usage_error(command, "%s holds a checkpoint that cannot be read (%s); pass "
                                   "--overwrite to start a new run there", o->out,
                                   cm_error_detail());
        if (step < steps)
            return cli_usage_error(command, "%s holds an unfinished run (step %zu of %zu): "
                                   "continue it with --resume %s, or pass --overwrite to start "
                                   "again", o->out, step, steps, o->out);
    }
    cm_status status = cm_checkpoint_clear_run(o->out);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

static int fresh_run(const train_options *o) {
    const char *command = "train";
    if (!o->data) return cli_usage_error(command, "--data is required");
    if (!o->out) return cli_usage_error(command, "--out is required");
    if (o->threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", o->threads);
    cli_set_threads(o->threads);
    cm_data *data = NULL;
    cm_status status = cm_data_open(&data, o->data);
    if (status != CM_OK) return cli_fail(command, status);
    cm_train_config config = o->config;
    train_session s = {0};
    int result = CLI_OK;
    config.network.dim = cm_data_dim(data);
    cm_data_image_shape(data, &config.network.image_channels, &config.network.image_height,
                        &config.network.image_width);
    status = cm_train_config_check(&config);
    if (status == CM_OK) status = cli_make_directory(o->out);
    if (status == CM_OK) status = lock_directory(o->out);
    if (status != CM_OK) result = cli_fail(command, status);
    if (result == CLI_OK) result = clear_previous_run(o);
    if (result == CLI_OK) {
        status = session_init(&s, o, o->out, &config, data);
        if (status == CM_OK) status = cm_trainer_init(&s.trainer, &config, data);
        if (status == CM_OK) status = attach_teacher(&s, 1);
        char path[TRAIN_PATH_MAX];
        snprintf(path, sizeof path, "%s/train.csv", o->out);
        if (status == CM_OK && !(s.log = fopen(path, "w")))
            status = cm_error_set(CM_ERR_IO, "cannot write %s", path);
        if (status == CM_OK) fputs(TRAIN_LOG_HEADER, s.log);
        if (status != CM_OK) result = cli_fail(command, status);
    }
    if (result == CLI_OK && !o->quiet)
        fprintf(stderr, "cm train: %s on %s (D = %zu), %zu steps, batch %zu in %zu blocks, %s "
                        "network of %zu parameters, %zu thread(s)\n",
                cm_method_name(config.method.kind), cm_data_describe(data), config.network.dim,
                config.steps, config.batch, config.blocks, config.network.type->name,
                cm_model_param_count(cm_trainer_model(s.trainer)), o->threads);
    if (result == CLI_OK) result = run_loop(&s);
    session_free(&s);
    cm_data_free(data);
    return result;
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
    stored_setting(&o->threads, ck, "cm.cli.threads", 1);
    stored_setting(&o->save_every, ck, "cm.cli.save_every", 0);
    stored_setting(&o->keep, ck, "cm.cli.keep", 1);
    /* copied: the checkpoint is freed before the loop, which saves the path again */
    static char teacher_path[TRAIN_PATH_MAX];
    const char *teacher = cm_checkpoint_metadata(ck, "cm.cli.teacher_model");
    snprintf(teacher_path, sizeof teacher_path, "%s", teacher ? teacher : "");
    o->teacher_model = teacher_path[0] ? teacher_path : NULL;
    o->out = NULL;
    o->network = NULL;
    int parsed = parse_options(o, argc, argv);
    if (parsed != CLI_OK) return parsed;
    if (o->network && strcmp(o->network, o->config.network.type->name) != 0)
        return cli_usage_error("train", "--resume %s: --network is %s, the stored run has %s",
                               fresh.resume, o->network, o->config.network.type->name);
    if (o->overwrite)
        return cli_usage_error("train", "--overwrite and --resume contradict each other");
    if (o->out && !same_directory(o->out, fresh.resume))
        return cli_usage_error("train", "--out %s is not the resumed directory %s (a resumed run "
                               "writes into its own directory)", o->out, fresh.resume);
    if (o->threads > 64) return cli_usage_error("train", "--threads %zu: at most 64", o->threads);
    return CLI_OK;
}

static int resume_run(train_options *o, int argc, char **argv) {
    const char *command = "train", *dir = o->resume;
    char path[TRAIN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CM_CHECKPOINT_RUN_FILE);
    struct stat info;
    if (stat(dir, &info) != 0 || !S_ISDIR(info.st_mode))
        return cli_fail(command, cm_error_set(CM_ERR_IO, "--resume %s: no such run directory",
                                              dir));
    cm_status status = lock_directory(dir);
    if (status != CM_OK) return cli_fail(command, status);
    if (!file_exists(path))
        return cli_fail(command, cm_error_set(CM_ERR_IO, "%s: no checkpoint to resume from "
                                              "(was the run started with this cm?)", path));
    cm_checkpoint *ck = NULL;
    status = cm_checkpoint_read(&ck, path);
    if (status != CM_OK) return cli_fail(command, status);
    const cm_train_config *stored = cm_checkpoint_config(ck);
    int result = resume_options(o, ck, argc, argv);
    cm_train_config config;
    cm_data *data = NULL;
    train_session s = {0};
    if (result == CLI_OK) {
        config = o->config;
        status = cm_train_config_check(&config);
        if (status == CM_OK && cm_train_config_diff(&config, stored) != CM_OK)
            result = cli_usage_error(command, "--resume %s: %s (a resumed run keeps its "
                                     "configuration; start a new run to change it)", dir,
                                     cm_error_detail());
        else if (status != CM_OK)
            result = cli_fail(command, status);
    }
    if (result == CLI_OK) {
        cli_set_threads(o->threads);
        status = cm_data_open(&data, o->data);
        if (status != CM_OK && o->data == cm_checkpoint_data_source(ck)) {
            char detail[1024];
            snprintf(detail, sizeof detail, "%s", cm_error_detail());
            status = cm_error_set(status, "%s (the run's data; give its new place with --data)",
                                  detail);
        }
        if (status == CM_OK) status = session_init(&s, o, dir, &config, data);
        if (status == CM_OK) status = cm_checkpoint_restore(&s.trainer, ck, data);
        if (status == CM_OK) status = attach_teacher(&s, 0);
        if (status == CM_OK) status = resume_log(&s, cm_checkpoint_step(ck));
        if (status != CM_OK) result = cli_fail(command, status);
    }
    if (result == CLI_OK) {
        s.saved_step = cm_checkpoint_step(ck);
        snprintf(s.saved_path, sizeof s.saved_path, "%s", path);
        if (!o->quiet)
            fprintf(stderr, "cm train: resuming %s at step %zu of %zu (%s on %s, %zu thread(s))\n",
                    dir, s.saved_step, config.steps, cm_method_name(config.method.kind),
                    cm_data_describe(data), o->threads);
    }
    cm_checkpoint_free(ck);
    if (result == CLI_OK) result = run_loop(&s);
    session_free(&s);
    cm_data_free(data);
    return result;
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
    int parsed = parse_options(&o, argc, argv);
    if (parsed != CLI_OK) return parsed;
    return o.resume ? resume_run(&o, argc, argv) : fresh_run(&o);
}
