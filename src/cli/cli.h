/* cli.h: shared declarations of the vitrine command-line tool (one file per subcommand). */
#ifndef VT_CLI_H
#define VT_CLI_H
#include "vitrine.h"
#include <stdio.h>

/* Exit codes of every subcommand (documented in `vitrine --help`). */
enum { VT_EXIT_OK = 0, VT_EXIT_FAIL = 1, VT_EXIT_USAGE = 2, VT_EXIT_PARTIAL = 3 };

/* A subcommand: argv[0] is the subcommand's name. Returns an exit code. */
typedef int (*vt_cmd_fn)(int argc, char **argv);

int vt_cmd_preprocess(int argc, char **argv);
int vt_cmd_model(int argc, char **argv);
int vt_cmd_embed(int argc, char **argv);
int vt_cmd_index(int argc, char **argv);
int vt_cmd_sample_catalog(int argc, char **argv);
int vt_cmd_ingest(int argc, char **argv);
int vt_cmd_similar(int argc, char **argv);
int vt_cmd_search(int argc, char **argv);
int vt_cmd_serve(int argc, char **argv);
int vt_cmd_train(int argc, char **argv);

/* Prints "vitrine: <msg>: <vt_errmsg()>" to stderr; returns VT_EXIT_FAIL. */
int cli_fail(int rc, const char *what);
/* Prints a usage error plus a hint to run --help; returns VT_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a whole decimal integer in [lo, hi]; returns 0 on success. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
/* Parses a float; returns 0 on success. */
int cli_parse_float(const char *s, double *out);
/* Parses "letterbox" or "stretch". */
int cli_parse_fit(const char *s, vt_fit_mode *out);
/* "f32" | "f16" | "i8" -> the index storage; -1 for anything else. */
int cli_parse_store(const char *s, vt_index_store *out);
/* Lists the image files (.jpg .jpeg .png .webp, any case) directly in dir, sorted by name.
 * Returns the count (>= 0) or a negative error. Free with cli_free_list. */
int cli_list_images(const char *dir, char ***out);
void cli_free_list(char **list, int n);
/* Re-executes the process once with an OpenMP wait policy: a short spin when spin_ok (the command
 * only runs the network) and the machine looks idle, else OMP_WAIT_POLICY=passive; not when the
 * user chose a policy or spin count or set VITRINE_NO_REEXEC (see util.c). Returns only when it
 * does not re-execute. */
void cli_omp_policy_reexec(int spin_ok);

/* The default model's file name, shipped in models/ and installed to DATADIR/vitrine/. */
#define CLI_DEFAULT_MODEL_FILE "vitrine-fashion.onnx"
/* Where `make install` puts it: ${CMAKE_INSTALL_FULL_DATADIR}/vitrine/..., set by CMakeLists.txt. */
#ifndef VT_DEFAULT_MODEL_INSTALLED
#define VT_DEFAULT_MODEL_INSTALLED "/usr/local/share/vitrine/" CLI_DEFAULT_MODEL_FILE
#endif
/* Finds the model a command uses when given no --model, in this order: $VITRINE_MODEL when set
 * and non-empty (a missing or unreadable file is an error: no fall-through); then
 * <exe dir>/../models/vitrine-fashion.onnx (a build tree), <exe dir>/../share/vitrine/ (an
 * installed tree) and the configured install data dir. Returns 0 with the path in buf (n bytes);
 * VT_ENOTFOUND when no candidate exists, other negative codes for a bad $VITRINE_MODEL, both
 * with a message (vt_errmsg()) saying where it looked and how to give a model. */
int cli_default_model(char *buf, size_t n);
/* For a command given no --model: finds the default model into buf and notes
 * "CMD: model PATH (default)" on stderr unless quiet. Returns 0, or an exit code after printing
 * the error: VT_EXIT_USAGE when there is no default model, VT_EXIT_FAIL for a bad $VITRINE_MODEL. */
int cli_default_model_for(const char *cmd, char *buf, size_t n);
/* 1 when the user asked for quiet output (vitrine -q, or VITRINE_LOG=error|off): commands then
 * print no informational notes on stderr. */
int cli_quiet(void);

#endif
