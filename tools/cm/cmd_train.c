/* cmd_train.c: `cm train`: train a consistency model and write DIR/model.safetensors,
 * DIR/train.csv (step, loss, lr, elapsed, grad_norm, levels), DIR/config.json and DIR/loss.png.
 * Progress: a bar with loss, steps/s and ETA on a terminal, plain lines every 10% otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/config.h"
#include "cm/data.h"
#include "cm/io.h"
#include "cm/plot.h"
#include "cm/train.h"

typedef struct {
    const char *data, *out, *method, *teacher, *loss, *weighting;
    size_t steps, batch, width, depth, embed, threads, T, warmup;
    uint64_t seed;
    double lr, ema, c0, c1, clip, weight_decay, target_ema, sigma_max, sigma_min, embed_frequency;
    double p_mean, p_std;
    const char *lr_schedule;
    double final_lr;
    int quiet;
} train_options;

static void progress(const cm_train_report *r, size_t total, double elapsed, double smoothed,
                     int terminal) {
    double rate = elapsed > 0 ? (double)r->step / elapsed : 0.0;
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

static cm_status write_config_json(const char *path, const cm_train_config *config,
                                   const char *data_description) {
    char *json = NULL;
    CM_TRY(cm_train_config_to_json(&json, config));
    size_t capacity = strlen(json) + strlen(data_description) + 64;
    char *text = cm_malloc(capacity, 1);
    if (!text) {
        cm_free(json);
        return cm_error_set(CM_ERR_NOMEM, "config.json");
    }
    /* data descriptions are canonical spec strings or paths; escape quotes and backslashes */
    char escaped[1024];
    size_t e = 0;
    for (const char *p = data_description; *p && e + 3 < sizeof escaped; p++) {
        if (*p == '"' || *p == '\\') escaped[e++] = '\\';
        escaped[e++] = (unsigned char)*p < 0x20 ? '?' : *p;
    }
    escaped[e] = '\0';
    int length = snprintf(text, capacity, "{\"data\": \"%s\", \"train\": %s}\n", escaped, json);
    cm_status status = cm_file_write_atomic(path, text, (size_t)length);
    cm_free(text);
    cm_free(json);
    return status;
}

static cm_status build_config(cm_train_config *out, const train_options *o, size_t dim,
                              const char *command) {
    cm_method method;
    CM_TRY(cm_method_parse(&method, o->method));
    cm_train_config c = cm_train_config_default(method, dim);
    c.steps = o->steps;
    c.batch = o->batch;
    c.seed = o->seed;
    c.network.width = o->width;
    c.network.depth = o->depth;
    c.network.embed = o->embed;
    c.network.embed_max_frequency = o->embed_frequency;
    c.adam.learning_rate = o->lr;
    c.adam.warmup_steps = o->warmup;
    c.adam.clip_norm = o->clip;
    c.adam.weight_decay = o->weight_decay;
    c.adam.final_fraction = o->final_lr;
    CM_TRY(cm_lr_schedule_parse(&c.lr_schedule, o->lr_schedule));
    c.ema_decay = o->ema;
    c.chain_T = o->T;
    c.c0 = o->c0;
    c.c1 = o->c1;
    c.sigma_max = o->sigma_max;
    c.sigma_min = o->sigma_min;
    c.ict_p_mean = o->p_mean;
    c.ict_p_std = o->p_std;
    c.ct_target_ema = o->target_ema;
    CM_TRY(cm_teacher_parse(&c.teacher, o->teacher));
    if (o->loss) CM_TRY(cm_loss_parse(&c.loss, o->loss));
    if (o->weighting) CM_TRY(cm_weighting_parse(&c.weighting, o->weighting));
    (void)command;
    CM_TRY(cm_train_config_check(&c));
    *out = c;
    return CM_OK;
}

/* Run the loop; on success the outputs are written. */
static int run(const train_options *o, const cm_train_config *config, const cm_data *data) {
    const char *command = "train";
    char path[4096];
    cm_trainer *trainer = NULL;
    cm_status status = cm_trainer_init(&trainer, config, data);
    if (status != CM_OK) return cli_fail(command, status);
    snprintf(path, sizeof path, "%s/train.csv", o->out);
    FILE *log = fopen(path, "w");
    if (!log) {
        cm_trainer_free(trainer);
        return cli_fail(command, cm_error_set(CM_ERR_IO, "cannot write %s", path));
    }
    fprintf(log, "step,loss,lr,elapsed,grad_norm,levels\n");
    double *loss_history = cm_malloc(config->steps, sizeof(double));
    double *step_axis = cm_malloc(config->steps, sizeof(double));
    if (!loss_history || !step_axis) status = cm_error_set(CM_ERR_NOMEM, "loss history");
    int terminal = isatty(2) && !o->quiet;
    double start = cli_seconds(), last_print = 0.0, smoothed = NAN;
    if (!o->quiet)
        fprintf(stderr, "cm train: %s on %s (D = %zu), %zu steps, batch %zu, width %zu, depth %zu, "
                        "%zu thread(s)\n",
                cm_method_name(config->method), cm_data_describe(data), config->network.dim,
                config->steps, config->batch, config->network.width, config->network.depth, o->threads);
    for (size_t k = 0; status == CM_OK && k < config->steps; k++) {
        cm_train_report report;
        status = cm_trainer_step(trainer, &report);
        if (status != CM_OK) break;
        double elapsed = cli_seconds() - start;
        fprintf(log, "%zu,%.9g,%.6g,%.4f,%.6g,%zu\n", report.step, report.loss,
                report.learning_rate, elapsed, report.grad_norm, report.levels);
        loss_history[k] = report.loss;
        step_axis[k] = (double)report.step;
        smoothed = isnan(smoothed) ? report.loss : 0.98 * smoothed + 0.02 * report.loss;
        int last = report.step == config->steps;
        if (o->quiet) continue;
        if (terminal ? (elapsed - last_print > 0.2 || last)
                     : (report.step % (config->steps / 10 ? config->steps / 10 : 1) == 0 || last)) {
            progress(&report, config->steps, elapsed, smoothed, terminal);
            last_print = elapsed;
        }
    }
    fclose(log);
    double elapsed = cli_seconds() - start;
    if (status == CM_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", o->out);
        status = cm_model_save(cm_trainer_model(trainer), path);
    }
    if (status == CM_OK) {
        snprintf(path, sizeof path, "%s/config.json", o->out);
        status = write_config_json(path, config, cm_data_describe(data));
    }
    if (status == CM_OK) {
        snprintf(path, sizeof path, "%s/loss.png", o->out);
        status = cm_plot_line_png(path, step_axis, loss_history, config->steps, "training loss",
                                  "step", "loss", 1);
    }
    if (status == CM_OK && !o->quiet)
        fprintf(stderr, "cm train: %zu steps in %.1f s (%.1f steps/s), final loss (smoothed) %.4g\n"
                        "cm train: wrote %s/model.safetensors, train.csv, config.json, loss.png\n",
                config->steps, elapsed, (double)config->steps / elapsed, smoothed, o->out);
    cm_free(loss_history);
    cm_free(step_axis);
    cm_trainer_free(trainer);
    if (status != CM_OK) {
        if (terminal) fprintf(stderr, "\n");
        return cli_fail(command, status);
    }
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    const char *command = "train";
    cm_train_config defaults = cm_train_config_default(CM_METHOD_ICT, 2);
    train_options o = {.method = "ict",
                       .teacher = "online",
                       .steps = defaults.steps,
                       .batch = defaults.batch,
                       .width = defaults.network.width,
                       .depth = defaults.network.depth,
                       .embed = defaults.network.embed,
                       .embed_frequency = defaults.network.embed_max_frequency,
                       .threads = 1,
                       .T = defaults.chain_T,
                       .warmup = defaults.adam.warmup_steps,
                       .seed = 0,
                       .lr = defaults.adam.learning_rate,
                       .ema = defaults.ema_decay,
                       .c0 = defaults.c0,
                       .c1 = defaults.c1,
                       .clip = defaults.adam.clip_norm,
                       .weight_decay = defaults.adam.weight_decay,
                       .target_ema = defaults.ct_target_ema,
                       .sigma_max = defaults.sigma_max,
                       .sigma_min = defaults.sigma_min,
                       .p_mean = defaults.ict_p_mean,
                       .p_std = defaults.ict_p_std,
                       .lr_schedule = cm_lr_schedule_name(defaults.lr_schedule),
                       .final_lr = defaults.adam.final_fraction};
    cli_option options[] = {
        {"data", OPT_STRING, &o.data, "data source: 8gaussians|moons|swissroll|checkerboard|rings, gauss:..., gmm:..., FILE.csv|npy", 0, 1, 0},
        {"method", OPT_STRING, &o.method, "lhw | ct | ict", 0, 0, 0},
        {"steps", OPT_SIZE, &o.steps, "optimiser steps", 1, 0, 0},
        {"seed", OPT_U64, &o.seed, "seed of every random draw", 0, 0, 0},
        {"out", OPT_STRING, &o.out, "output directory (created)", 0, 1, 0},
        {"width", OPT_SIZE, &o.width, "MLP width", 1, 0, 0},
        {"depth", OPT_SIZE, &o.depth, "MLP hidden layers", 1, 0, 0},
        {"embed", OPT_SIZE, &o.embed, "Fourier features of c_noise (even)", 2, 0, 0},
        {"embed-frequency", OPT_DOUBLE, &o.embed_frequency, "largest Fourier frequency", 1, 0, 0},
        {"batch", OPT_SIZE, &o.batch, "batch size", 1, 0, 0},
        {"lr", OPT_DOUBLE, &o.lr, "Adam learning rate", 0, 0, 0},
        {"lr-schedule", OPT_STRING, &o.lr_schedule, "constant | cosine (decay to final-lr x lr at the last step)", 0, 0, 0},
        {"final-lr", OPT_DOUBLE, &o.final_lr, "cosine: final rate as a fraction of --lr", 0, 0, 0},
        {"warmup", OPT_SIZE, &o.warmup, "linear warm-up steps", 0, 0, 0},
        {"clip", OPT_DOUBLE, &o.clip, "gradient-norm clip (0: off)", 0, 0, 0},
        {"weight-decay", OPT_DOUBLE, &o.weight_decay, "decoupled weight decay", 0, 0, 0},
        {"ema", OPT_DOUBLE, &o.ema, "evaluation EMA decay (0: off)", 0, 0, 0},
        {"threads", OPT_SIZE, &o.threads, "BLAS threads", 1, 0, 0},
        {"T", OPT_SIZE, &o.T, "lhw: chain length T", 2, 0, 0},
        {"c0", OPT_DOUBLE, &o.c0, "lhw: schedule constant c0", 0, 0, 0},
        {"c1", OPT_DOUBLE, &o.c1, "lhw: schedule constant c1", 0, 0, 0},
        {"teacher", OPT_STRING, &o.teacher, "lhw: online | sequential", 0, 0, 0},
        {"loss", OPT_STRING, &o.loss, "l2 | pseudo-huber (default: l2 for ct, pseudo-huber otherwise)", 0, 0, 0},
        {"weighting", OPT_STRING, &o.weighting, "none | inverse-gap: 1/(sigma_{i+1} - sigma_i) (default: none for ct, inverse-gap otherwise)", 0, 0, 0},
        {"target-ema", OPT_DOUBLE, &o.target_ema, "ct: target EMA decay in [0, 1) (0: no EMA target); negative: [CM]'s adaptive mu(k)", -1, 0, 0},
        {"sigma-max", OPT_DOUBLE, &o.sigma_max, "ct/ict: largest noise level", 0, 0, 0},
        {"sigma-min", OPT_DOUBLE, &o.sigma_min, "ct/ict: smallest noise level (f is the identity there)", 0, 0, 0},
        {"p-mean", OPT_DOUBLE, &o.p_mean, "ict: mean of log sigma of the level distribution", -1e3, 0, 0},
        {"p-std", OPT_DOUBLE, &o.p_std, "ict: std of log sigma of the level distribution", 0, 0, 0},
        {"quiet", OPT_FLAG, &o.quiet, "no progress output", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Train a consistency model. Writes DIR/model.safetensors, DIR/train.csv,\n"
                           "DIR/config.json and DIR/loss.png. Methods: lhw ([LHW] iterative consistency\n"
                           "learning), ct ([CM] consistency training), ict ([iCT]).");
    if (parsed != CLI_OK) return parsed;
    if (o.threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", o.threads);
    cli_set_threads(o.threads);
    cm_data *data = NULL;
    cm_status status = cm_data_open(&data, o.data);
    if (status != CM_OK) return cli_fail(command, status);
    cm_train_config config;
    status = build_config(&config, &o, cm_data_dim(data), command);
    if (status == CM_OK) status = cli_make_directory(o.out);
    int result = status == CM_OK ? run(&o, &config, data) : cli_fail(command, status);
    cm_data_free(data);
    return result;
}
