/* util.c: small helpers shared by the vitrine subcommands (errors, number parsing, listings,
 * finding the default model). */
#include "cli.h"
#include "core/internal.h"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_fail(int rc, const char *what) {
    if (what)
        fprintf(stderr, "vitrine: %s: %s\n", what, vt_errmsg());
    else
        fprintf(stderr, "vitrine: %s (%s)\n", vt_errmsg(), vt_strerror(rc));
    return VT_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vitrine %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vitrine %s --help'.\n", cmd);
    return VT_EXIT_USAGE;
}

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cli_parse_fit(const char *s, vt_fit_mode *out) {
    if (strcmp(s, "letterbox") == 0) *out = VT_FIT_LETTERBOX;
    else if (strcmp(s, "stretch") == 0) *out = VT_FIT_STRETCH;
    else return -1;
    return 0;
}

int cli_parse_store(const char *s, vt_index_store *out) {
    if (strcmp(s, "f32") == 0) *out = VT_STORE_F32;
    else if (strcmp(s, "f16") == 0) *out = VT_STORE_F16;
    else if (strcmp(s, "i8") == 0) *out = VT_STORE_I8;
    else return -1;
    return 0;
}

static int is_image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    if (!dot) return 0;
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
           !strcasecmp(dot, ".webp");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cli_list_images(const char *dir, char ***out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "vitrine: %s: %s\n", dir, strerror(errno));
        return VT_ENOENT;
    }
    size_t cap = 256, n = 0;
    char **list = malloc(cap * sizeof *list);
    struct dirent *e;
    while (list && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
        if (n == cap) {
            char **nl = realloc(list, (cap *= 2) * sizeof *list);
            if (!nl) break;
            list = nl;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        list[n] = malloc(len);
        if (!list[n]) break;
        snprintf(list[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (!list) return VT_ENOMEM;
    qsort(list, n, sizeof *list, cmp_str);
    *out = list;
    return (int)n;
}

void cli_free_list(char **list, int n) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

/* How many of five samples of /proc/stat, 2 ms apart, showed a runnable task besides this process;
 * -1 when it cannot be read. A transient task (a shell pipeline starting up) shows in one sample or
 * two; a busy neighbour in all of them. Any other task counts, whatever the CPU count: the network
 * runs one thread per CPU by default, and a single descheduled thread stalls every barrier. */
static int busy_samples(void) {
    int busy = 0;
    for (int s = 0; s < 5; s++) {
        if (s) nanosleep(&(struct timespec){0, 2000000}, NULL);
        FILE *f = fopen("/proc/stat", "r");
        if (!f) return -1;
        char line[256];
        int running = -1;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "procs_running ", 14)) {
                running = atoi(line + 14);
                break;
            }
        fclose(f);
        if (running < 0) return -1;
        busy += running > 1;
    }
    return busy;
}

/* OpenMP's default wait policy makes idle worker threads spin after every parallel region; on a
 * machine shared with other busy processes that turns each of oneDNN's per-layer barriers into a
 * wait for a descheduled thread (measured: MobileNetV2 with 2 threads went from 14 ms to 670 ms per
 * image). On an idle machine the opposite holds: a short spin (GOMP_SPINCOUNT=20000) lets the
 * workers catch the next layer without a sleep and a wake-up, and small networks run up to 1.9x
 * faster with 2 threads than with OMP_WAIT_POLICY=passive (docs/nn.md). libgomp reads these only
 * when it starts, so when the user has chosen neither, re-execute this same command line once with
 * - the short spin for commands that only run the network (`spin_ok`: model, embed) when at most
 *   two of five samples of the runnable-task count showed another task, and
 * - OMP_WAIT_POLICY=passive otherwise (servers, ingest and training share the CPUs with their own
 *   decoding and HTTP threads, and a busy machine punishes spinning). */
void cli_omp_policy_reexec(int spin_ok) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("VITRINE_NO_REEXEC")) return;
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == 0 || n >= sizeof buf - 1) return;
    buf[n] = 0;
    char *args[1024];
    int na = 0;
    for (size_t i = 0; i < n && na < 1023; i += strlen(buf + i) + 1) args[na++] = buf + i;
    args[na] = NULL;
    int busy = spin_ok ? busy_samples() : -1;
    if (busy >= 0 && busy <= 2) { /* mostly only this process runnable */
        setenv("GOMP_SPINCOUNT", "20000", 1);
        VT_LOGI("OpenMP: short spin (GOMP_SPINCOUNT=20000): another task runnable in %d of 5 samples", busy);
    } else {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        if (spin_ok) VT_LOGI("OpenMP: passive wait: another task runnable in %d of 5 samples", busy);
    }
    setenv("VITRINE_NO_REEXEC", "1", 1);
    fflush(NULL);
    execv("/proc/self/exe", args);
    /* exec failed: carry on with the default policy */
}

int cli_quiet(void) { return vt_log_get_level() >= VT_LOG_ERROR; }

/* Copies path into buf (n bytes); VT_ETOOBIG when it does not fit. */
static int copy_path(char *buf, size_t n, const char *path) {
    size_t len = strlen(path);
    if (len >= n) return vt__err(VT_ETOOBIG, "%s: path too long", path);
    memcpy(buf, path, len + 1);
    return VT_OK;
}

int cli_default_model(char *buf, size_t n) {
    if (!buf || !n) return vt__err(VT_EINVAL, "cli_default_model: no buffer");
    buf[0] = 0;
    struct stat st;
    const char *env = getenv("VITRINE_MODEL");
    if (env && *env) { /* the user's choice: report its problem rather than use another model */
        if (stat(env, &st) != 0) return vt__err(VT_ENOENT, "VITRINE_MODEL=%s: %s", env, strerror(errno));
        if (!S_ISREG(st.st_mode)) return vt__err(VT_EINVAL, "VITRINE_MODEL=%s: not a regular file", env);
        if (access(env, R_OK) != 0) return vt__err(VT_EIO, "VITRINE_MODEL=%s: %s", env, strerror(errno));
        return copy_path(buf, n, env);
    }
    enum { CAP = PATH_MAX + 64 };
    char cand[3][CAP];
    int nc = 0;
    char prefix[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", prefix, sizeof prefix - 1);
    if (len > 0) {
        prefix[len] = 0;
        char *sl = strrchr(prefix, '/'); /* .../bin/vitrine -> .../bin -> ... */
        if (sl) *sl = 0;
        sl = strrchr(prefix, '/');
        if (sl) {
            *sl = 0;
            snprintf(cand[nc++], CAP, "%.*s/models/%s", PATH_MAX, prefix, CLI_DEFAULT_MODEL_FILE);
            snprintf(cand[nc++], CAP, "%.*s/share/vitrine/%s", PATH_MAX, prefix, CLI_DEFAULT_MODEL_FILE);
        }
    }
    if (nc < 2 || strcmp(cand[1], VT_DEFAULT_MODEL_INSTALLED) != 0)
        snprintf(cand[nc++], CAP, "%s", VT_DEFAULT_MODEL_INSTALLED);
    for (int i = 0; i < nc; i++)
        if (stat(cand[i], &st) == 0 && S_ISREG(st.st_mode) && access(cand[i], R_OK) == 0)
            return copy_path(buf, n, cand[i]);
    char where[3 * 400] = "";
    for (int i = 0; i < nc; i++)
        snprintf(where + strlen(where), sizeof where - strlen(where), "%s%.380s", i ? ", " : "", cand[i]);
    return vt__err(VT_ENOTFOUND,
                   "no default model found (VITRINE_MODEL is not set; looked for %s); give --model FILE, "
                   "set VITRINE_MODEL=FILE, or train one with `vitrine train ... -o models/%s` "
                   "(see models/MODEL.md)",
                   where, CLI_DEFAULT_MODEL_FILE);
}

int cli_default_model_for(const char *cmd, char *buf, size_t n) {
    int rc = cli_default_model(buf, n);
    if (rc == VT_ENOTFOUND) return cli_usage_error(cmd, "%s", vt_errmsg());
    if (rc) return cli_fail(rc, cmd);
    if (!cli_quiet()) fprintf(stderr, "%s: model %s (default)\n", cmd, buf);
    return VT_EXIT_OK;
}
