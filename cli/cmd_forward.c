/* cli/cmd_forward.c — placeholder until the module behind it lands. */
#include "cli.h"

int cmd_forward(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    vl_err e = {VL_ECONFIG, "this command is not built yet"};
    return cli_fail("forward", &e);
}
