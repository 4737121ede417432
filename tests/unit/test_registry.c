/*
 * test_registry.c - the scheme registry (formats.h): every row complete, names unique, lookups
 * by name, quant_method and near miss, and the checker refusing a planted incomplete row.
 */
#include "../../formats/formats.h"

#include <criterion/criterion.h>
#include <string.h>

Test(unit_registry, every_entry_is_complete)
{
    cr_assert_gt(mp_scheme_count(), 0);
    for (size_t i = 0; i < mp_scheme_count(); i++) {
        const mp_scheme *s = mp_scheme_at(i);
        cr_assert_not_null(s, "entry %zu is NULL", i);
        const char *why = mp_scheme_check(s);
        cr_expect_null(why, "entry %zu ('%s'): %s", i, s->name ? s->name : "?", why ? why : "");
    }
    cr_expect_null(mp_scheme_at(mp_scheme_count()));
}

Test(unit_registry, names_are_unique_and_found)
{
    for (size_t i = 0; i < mp_scheme_count(); i++) {
        const mp_scheme *s = mp_scheme_at(i);
        cr_expect_eq(mp_scheme_find(s->name), s, "'%s' is not found as itself", s->name);
        for (size_t j = i + 1; j < mp_scheme_count(); j++)
            cr_expect_neq(strcmp(s->name, mp_scheme_at(j)->name), 0, "two entries named '%s'", s->name);
    }
    cr_expect_null(mp_scheme_find("int3"));
}

Test(unit_registry, a_planted_incomplete_row_is_refused)
{
    static const char *const methods[] = {"planted", NULL};
    mp_scheme empty = {.name = "planted", .pack = MP_QPACK_COUNT};
    cr_expect_str_eq(mp_scheme_check(&empty), "no summary");
    /* A target copied from a real one but missing its kernel family. */
    mp_scheme no_kernel = *mp_scheme_find("gptq");
    no_kernel.kernel = NULL;
    cr_expect_str_eq(mp_scheme_check(&no_kernel), "a target without a kernel family");
    mp_scheme no_shapes = *mp_scheme_find("compressed-tensors");
    no_shapes.check_shapes = NULL;
    cr_expect_str_eq(mp_scheme_check(&no_shapes), "a layout without a shape check");
    mp_scheme no_reader = {.name = "planted", .summary = "x", .roles = MP_SCHEME_SOURCE,
                           .pack = MP_QPACK_COUNT, .methods = methods};
    cr_expect_str_eq(mp_scheme_check(&no_reader), "methods without a config reader");
}

Test(unit_registry, quant_methods_pick_their_entry)
{
    cr_expect_str_eq(mp_scheme_for_method("gptq")->name, "gptq");
    cr_expect_str_eq(mp_scheme_for_method("awq")->name, "awq");
    cr_expect_str_eq(mp_scheme_for_method("intel/auto-round")->name, "auto-round");
    cr_expect_str_eq(mp_scheme_for_method("compressed-tensors")->name, "compressed-tensors");
    cr_expect_str_eq(mp_scheme_for_method("bitsandbytes")->name, "bnb-4bit");
    cr_expect_null(mp_scheme_for_method("hqq"));
    cr_expect_str_eq(mp_qmethod_name(MP_QM_BNB), "bitsandbytes");
    cr_expect_str_eq(mp_qmethod_name(MP_QM_AUTOROUND), "auto-round");
    cr_expect_str_eq(mp_qmethod_name(MP_QM_MODELPREP), "modelprep");
}

Test(unit_registry, target_list_and_did_you_mean)
{
    char buf[256];
    mp_scheme_names(MP_SCHEME_TARGET, buf, sizeof buf);
    cr_expect_str_eq(buf, "cutlass-int4, onednn-int4, gptq, gptq-v2, awq, compressed-tensors");
    mp_scheme_names(MP_SCHEME_TARGET, buf, 12);
    cr_expect_str_eq(buf, "cutlass-int");
    cr_expect_str_eq(mp_scheme_nearest("cutlas-int4", MP_SCHEME_TARGET)->name, "cutlass-int4");
    cr_expect_str_eq(mp_scheme_nearest("gptqv2", MP_SCHEME_TARGET)->name, "gptq-v2");
    cr_expect_null(mp_scheme_nearest("awq-gemv", MP_SCHEME_TARGET)); /* a source only: too far from awq */
    cr_expect_null(mp_scheme_nearest("bitsandbytes", MP_SCHEME_TARGET));
}
