/* The primitives for one instruction set (included by for_each_isa.h): their float and double table. */
#define TYPED_BODY "primitives.h"
#include "for_each_type.h"
#undef TYPED_BODY

static const struct primitive_table XCAT(primitives, ISA) = {
    XSTR(ISA),
    XCAT(centred_linear_float, ISA),
    XCAT(centred_linear_double, ISA),
    XCAT(centred_addcmul_float, ISA),
    XCAT(centred_addcmul_double, ISA),
};
