/*
 * test_name_numbers.c - class 6 of issue 14: every number taken from a name (layer, expert,
 * shard, GGUF blk.N) goes through mp_parse_name_index, a bounded decimal (doc/limits.md).
 */
#include "../../common/mp_common.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

static size_t parse(const char *s, uint64_t max, uint64_t *v, const char **why)
{
    *v = 12345;
    *why = "unset";
    return mp_parse_name_index(s, max, v, why);
}

Test(unit_names, plain_decimals_are_read_up_to_the_first_non_digit)
{
    uint64_t v;
    const char *why;
    cr_expect_eq(parse("0.mlp", 100, &v, &why), 1);
    cr_expect_eq(v, 0);
    cr_expect_null(why);
    cr_expect_eq(parse("17.self_attn", 100, &v, &why), 2);
    cr_expect_eq(v, 17);
    cr_expect_eq(parse("18446744073709551615", UINT64_MAX, &v, &why), 20);
    cr_expect_eq(v, UINT64_MAX);
    cr_expect_eq(parse("100", 100, &v, &why), 3, "max itself is allowed");
    cr_expect_eq(v, 100);
}

Test(unit_names, signs_spaces_and_empty_runs_are_refused)
{
    uint64_t v;
    const char *why;
    static const char *const bad[] = {"-1.ffn_up", "+1.ffn_up", " 1", "", ".weight", "x1", "\t7", "-0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_expect_eq(parse(bad[i], 1000, &v, &why), 0, "'%s' accepted", bad[i]);
        cr_expect_eq(v, 0, "'%s': value left set", bad[i]);
        cr_expect_str_eq(why, bad[i][0] == '-' || bad[i][0] == '+' ? "is signed" : "is not a decimal number",
                         "'%s'", bad[i]);
    }
}

Test(unit_names, leading_zeros_are_refused_so_two_spellings_cannot_name_one_layer)
{
    uint64_t v;
    const char *why;
    cr_expect_eq(parse("007.mlp", 1000, &v, &why), 0);
    cr_expect_str_eq(why, "has a leading zero");
    cr_expect_eq(parse("00", 1000, &v, &why), 0);
    cr_expect_str_eq(why, "has a leading zero");
}

Test(unit_names, values_above_the_bound_and_overflowing_runs_are_refused)
{
    uint64_t v;
    const char *why;
    cr_expect_eq(parse("101", 100, &v, &why), 0);
    cr_expect_str_eq(why, "is too large");
    cr_expect_eq(parse("18446744073709551616", UINT64_MAX, &v, &why), 0, "2^64 wraps in strtoul");
    cr_expect_str_eq(why, "is too large");
    cr_expect_eq(parse("99999999999999999999999.mlp", UINT64_MAX, &v, &why), 0, "23 digits");
    cr_expect_str_eq(why, "is too large");
    cr_expect_eq(parse("9", 5, &v, &why), 0, "a digit above a small bound");
    cr_expect_str_eq(why, "is too large");
    cr_expect_eq(parse("1", 0, &v, &why), 0);
    cr_expect_eq(parse("0", 0, &v, &why), 1);
}
