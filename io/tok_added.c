/* io/tok_added.c — tok_is_added (see tok_added.h for why it is a file of its own). */
#include "tok_added.h"

#include "tok_int.h"

int tok_is_added(const tok_tokenizer *t, int32_t id)
{
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id)
            return 1;
    return 0;
}
