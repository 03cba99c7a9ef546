/* The k-means row step for one instruction set (included by for_each_isa.h): its float and double table. */
#define TYPED_BODY "row_step.h"
#include "for_each_type.h"
#undef TYPED_BODY

static const struct row_step_table XCAT(row_steps, ISA) = {
    XSTR(ISA),
    XCAT(flat_explain_float, ISA),
    XCAT(flat_explain_double, ISA),
};
