/* testutil.h: helpers shared by the unit tests (temporary folders, data paths, peak memory). */
#ifndef VT_TESTUTIL_H
#define VT_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "vitrine.h"

/* A fresh temporary folder for this test process (removed at exit). */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name in a static rotating buffer. */
const char *tu_path(const char *name);
/* Path of a file of the shared data set, or NULL (and a skip note) when it is absent. */
const char *tu_data(const char *rel);
int tu_write(const char *path, const void *buf, size_t len);
/* Ends the current test as skipped because a prerequisite (`why`: the shared data, a package) is
 * missing; under CI=true it fails instead, since there a missing prerequisite is a broken install. */
#define TU_SKIP(why) do { tu_skip_note(why); skip(); } while (0)
void tu_skip_note(const char *why);
/* Peak resident set size of this process in KiB (VmHWM). */
long tu_peak_rss_kib(void);
#endif
