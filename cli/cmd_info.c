/* cli/cmd_info.c — placeholder until the module behind it lands. */
#include "cli.h"

int cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    vl_err e = {VL_ECONFIG, "this command is not built yet"};
    return cli_fail("info", &e);
}
