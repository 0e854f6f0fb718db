/* tests/test_prog.c — core/prog: progress lines go to stderr only when it is a terminal.
 *
 * Checks: prog_update records the work done; with stderr a regular file nothing is printed
 * (logs and pipes stay clean); with stderr a pseudo-terminal prog_finish prints
 * "\rWHAT: DONE/TOTAL UNIT, ..." and ends the line. Rates and ETAs depend on the clock and are
 * not compared.
 */
#define _XOPEN_SOURCE 600
#include "../core/prog.h"
#include "check.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run init/update/finish with fd 2 pointing at FD; stderr restored afterwards. */
static void run_on(int fd, prog *p)
{
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    prog_init(p, "eval en", "tok", 10);
    prog_update(p, 4);
    prog_update(p, 10);
    prog_finish(p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

int main(void)
{
    chk c;
    chk_init(&c, "prog");

    /* stderr a regular file: silent */
    char path[64];
    snprintf(path, sizeof path, "/tmp/vbrlab-prog-%d.txt", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(&c, fd >= 0, "temp file");
    prog p;
    if (fd >= 0) {
        run_on(fd, &p);
        CHECK_INT(&c, p.enabled, 0, "not a terminal: disabled");
        CHECK_INT(&c, p.done, 10, "done recorded");
        CHECK_INT(&c, p.total, 10, "total kept");
        CHECK_INT(&c, lseek(fd, 0, SEEK_END), 0, "nothing printed to a file");
        close(fd);
    }
    remove(path);

    /* stderr a pseudo-terminal: one progress line, ended by prog_finish */
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    const char *slave_name = master >= 0 && !grantpt(master) && !unlockpt(master)
                                 ? ptsname(master)
                                 : NULL;
    int slave = slave_name ? open(slave_name, O_RDWR | O_NOCTTY) : -1;
    if (slave < 0) {
        printf("SKIP no pseudo-terminal available\n");
    } else {
        run_on(slave, &p);
        CHECK_INT(&c, p.enabled, 1, "a terminal: enabled");
        char buf[512] = "";
        int flags = fcntl(master, F_GETFL);
        fcntl(master, F_SETFL, flags | O_NONBLOCK);
        ssize_t n = 0, k;
        while (n < (ssize_t)sizeof buf - 1 && (k = read(master, buf + n, sizeof buf - 1 - n)) > 0)
            n += k;
        buf[n > 0 ? n : 0] = '\0';
        CHECK(&c, strstr(buf, "\reval en: 10/10 tok, ") != NULL, "final line: \"%s\"", buf);
        CHECK(&c, n > 0 && strchr(buf, '\n') != NULL, "the line is ended");
        close(slave);
    }
    if (master >= 0)
        close(master);
    return chk_done(&c);
}
