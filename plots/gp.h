/* plots/gp.h — a one-way pipe to gnuplot that also saves what it sends.
 *
 * gp_open starts `gnuplot` (posix_spawnp, no shell) and, when asked, opens a script file beside
 * the output
 * (OUT.gp): every command and every inline data block sent to gnuplot is written there too, so
 * each figure can be re-drawn and edited with `gnuplot OUT.gp` alone. Data go as gnuplot 5
 * inline data blocks ($name << EOD ... EOD), so the script is self-contained.
 *
 * Text from data (file names, titles, labels, tic and set names) reaches gnuplot only through
 * gp_str, as a single-quoted literal with ' doubled: gnuplot expands neither `backquotes` (its
 * shell escape) nor @macros there. Text holding a control character (newline, CR, other C0,
 * DEL) is refused with VL_EARG, since a newline would end the command and start another. As a
 * second guard gp_cmd refuses a formatted command with a backquote or '!' line outside a
 * single-quoted string. The saved script holds exactly what gnuplot got (with OUT for OUT.tmp).
 *
 * A pipe cannot ask gnuplot whether a command worked; gnuplot reading its input stops at the
 * first error with a non-zero status, and its stdout and stderr go to an anonymous temporary
 * file (tmpfile: no predictable /tmp name), so gp_close reports the first error line and the
 * exit status. File terminals render to OUT.tmp, renamed
 * to OUT on success (no half-written figure). Interactive terminals (qt, wxt, x11) need a
 * display and a gnuplot built with them (Debian gnuplot-qt or gnuplot-x11).
 *
 * Commands are formatted with vsnprintf into a growable buffer (no fixed-size truncation).
 * One gp_pipe per figure; not thread-safe.
 */
#ifndef VL_GP_H
#define VL_GP_H

#include "../core/err.h"

#include <stddef.h>

typedef enum { GP_PNG, GP_SVG, GP_PDF, GP_QT, GP_WXT, GP_X11, GP_TERM_COUNT } gp_term;

typedef struct {
    gp_term term;          /* default GP_PNG */
    int width, height;     /* pixels (png/svg/interactive); pdf uses width/100 inches */
    const char *out;       /* output file for file terminals; script saved as OUT.gp */
    int save_script;       /* 1: write OUT.gp (or gnuplot-interactive.gp without OUT) */
    int interactive_wait;  /* interactive: keep the window after gnuplot exits (-persist) */
    const char *gnuplot;   /* program to run; NULL = "gnuplot" */
} gp_opts;

gp_opts gp_opts_default(void);

/* Parse "png", "svg", "pdf", "qt", "wxt", "x11"; VL_EARG naming the value otherwise. */
int gp_term_parse(const char *s, gp_term *out, vl_err *err);
int gp_term_is_file(gp_term t);

/* 1 if the gnuplot program (NULL = "gnuplot") lists terminal t in `set terminal` (file
 * terminals: pngcairo, svg, pdfcairo), 0 if not or gnuplot cannot be run. gp_open calls it for
 * interactive terminals and fails with VL_EARG "install gnuplot-qt or gnuplot-x11" on 0. */
int gp_term_available(gp_term t, const char *gnuplot);

typedef struct gp_pipe gp_pipe;

/* Start gnuplot and send the terminal/output setup. */
int gp_open(gp_pipe **out, const gp_opts *o, vl_err *err);

/* Send one command (a newline is appended). Returns 0; VL_EIO if the pipe broke; VL_EARG if a
 * gp_str argument was refused (its message) or the command fails the backquote guard. Any
 * failure of a gp_* call on g is remembered: gp_close then discards the figure. */
int gp_cmd(gp_pipe *g, vl_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Send a matrix rows × cols as the data block $name, one line per row ("%.17g" values; NaN
 * written as NaN so gnuplot leaves the cell empty). */
int gp_block_matrix(gp_pipe *g, const char *name, const double *m, int rows, int cols,
                    vl_err *err);

/* Send columns as a data block: n rows, ncols columns taken from cols[j][i]. */
int gp_block_columns(gp_pipe *g, const char *name, const double *const *cols, int ncols, int n,
                     vl_err *err);

/* Keep gnuplot's input open until gnuplot exits (gp_close waits for it first): for an
 * interactive script that waits for its window (`pause mouse ...`, which ends when the input
 * ends) and then exits by itself — it must end with `exit`, or gp_close waits forever. */
void gp_hold_input(gp_pipe *g);

/* The gnuplot string array NAME[1..n] holding texts[0..n) (NULL = ""), each through gp_str;
 * a '\n' in a text becomes a newline inside the gnuplot string (joined with "\n", never sent
 * raw). */
int gp_str_array(gp_pipe *g, const char *name, const char *const *texts, int n, vl_err *err);

/* s (NULL: "") as a gnuplot string literal 'like''this', for a %s of the next gp_cmd on g:
 * owned by g, valid until that gp_cmd returns. At most 8 per command. A string with a control
 * character is not quoted: "''" comes back and the next gp_cmd fails with VL_EARG naming the
 * text (control characters shown as \xNN). */
const char *gp_str(gp_pipe *g, const char *s);

/* s with the non-ASCII characters of vbrlab's labels spelled out: α → "alpha", ε → "eps",
 * ² → "^2", − → "-", × → "x", ‖ → "||", ± → "+/-", … (plots/gp.c lists them); any other
 * non-ASCII character becomes one '?'. Writes at most size bytes with the NUL (out may be NULL
 * when size is 0) and returns the full length. Every script sets `set encoding utf8`; on the
 * x11 terminal, whose core fonts lack these glyphs, gp_cmd passes each command through this,
 * so the x11 script holds no non-ASCII byte. */
size_t gp_ascii(const char *s, char *out, size_t size);

/* 0 if s holds no control character (bytes 0x01-0x1f, 0x7f); VL_EARG "WHAT \"s\" holds
 * control character 0x0a at byte N; refused ..." otherwise (one line: s shown escaped). */
int gp_text_check(const char *what, const char *s, vl_err *err);

/* Finish: wait for gnuplot, check its exit status and output file, rename OUT.tmp → OUT.
 * On error the message is gnuplot's first error line. After an earlier failed gp_* call on g
 * the figure is discarded and that call's code returned (err left as that call filled it).
 * Frees g (also on error). */
int gp_close(gp_pipe *g, vl_err *err);

#endif
