/*
 * test_partition.c - the plan of a partitioned job (convert/partition.h): every task computes
 * the same assignment of output files to parts, balanced by bytes, from the sizes alone; and the
 * job ids a user may give.
 */
#include "../../convert/partition.h"

#include <criterion/criterion.h>
#include <string.h>

Test(unit_partition, largest_first_onto_the_lightest_part_ties_by_index)
{
    /* 9 to part 0, 7 to part 1, the first 5 (file 0, the lower index) to part 2; the second 5
     * to part 2 again (5 is the lightest load); the 1 to part 1 (7 against 9 and 10). */
    const uint64_t bytes[] = {5, 9, 5, 1, 7};
    unsigned owner[5];
    mp_part_plan(bytes, 5, 3, owner);
    cr_expect_eq(owner[1], 0);  /* 9 */
    cr_expect_eq(owner[4], 1);  /* 7 */
    cr_expect_eq(owner[0], 2);  /* 5, the lower index of the two */
    cr_expect_eq(owner[2], 2);  /* 5: part 2 holds 5, the lightest */
    cr_expect_eq(owner[3], 1);  /* 1: part 1 holds 7 < 9 and < 10 */
}

Test(unit_partition, equal_loads_go_to_the_lower_part_and_every_file_has_one_owner)
{
    uint64_t bytes[40];
    unsigned owner[40], again[40];
    for (int k = 0; k < 40; k++) bytes[k] = 1000 + (uint64_t)(k * 7919 % 13) * 100;
    mp_part_plan(bytes, 40, 4, owner);
    mp_part_plan(bytes, 40, 4, again);
    cr_expect_arr_eq(owner, again, sizeof owner, "the plan is a function of the sizes");
    uint64_t load[4] = {0}, biggest = 0;
    for (int k = 0; k < 40; k++) {
        cr_assert_lt(owner[k], 4);
        load[owner[k]] += bytes[k];
        if (bytes[k] > biggest) biggest = bytes[k];
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) /* LPT: loads differ by at most the largest file */
            cr_expect_leq(load[i], load[j] + biggest, "part %d holds %llu, part %d %llu", i,
                          (unsigned long long)load[i], j, (unsigned long long)load[j]);
}

Test(unit_partition, more_parts_than_files_leaves_parts_empty)
{
    const uint64_t bytes[] = {3, 3};
    unsigned owner[2];
    mp_part_plan(bytes, 2, 5, owner);
    cr_expect_eq(owner[0], 0);
    cr_expect_eq(owner[1], 1);
}

Test(unit_partition, job_ids_are_safe_file_name_parts)
{
    cr_expect(mp_part_id_valid("deepseek-v3_bf16.2"));
    cr_expect(mp_part_id_valid("0123456789abcdef"));
    static const char *const bad[] = {"", ".", "..", "-x", ".hidden", "a/b", "a b", "a\nb", "x*",
                                      "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) cr_expect(!mp_part_id_valid(bad[i]), "'%s' accepted", bad[i]);
}
