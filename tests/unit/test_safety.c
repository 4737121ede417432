/*
 * test_safety.c - what modelprep creates, removes and resumes (doc/safety.md; issue 14, classes
 * 1, 2, 3 and 7): one script per class in tests/ref/, each with many inputs of its class, run
 * against the binary under test (the sanitizer build under SAN=1). A script prints
 * "NAME ok: N checks passed, K skipped"; a skipped check is reported here as a warning with
 * its count, never as passed.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_safety_script(const char *rel)
{
    run_result r = tu_run_script(tu_env("MP_PYTHON"), rel, NULL);
    cr_expect_eq(r.status, 0, "%s failed (exit %d):\n%s\n%s", rel, r.status, r.out, r.err);
    const char *line = strstr(r.out, " ok: ");
    unsigned long passed = 0, skipped = 0;
    int n = line ? sscanf(line, " ok: %lu checks passed, %lu skipped", &passed, &skipped) : 0;
    cr_expect(n == 2 && passed > 0, "%s: no summary line:\n%s\n%s", rel, r.out, r.err);
    if (n == 2 && skipped > 0) cr_log_warn("%s: %lu checks skipped:\n%s", rel, skipped, r.out);
    tu_run_free(&r);
}

Test(safety, symlinks_are_never_followed_to_create_remove_or_resume, .timeout = 600)
{
    run_safety_script("tests/ref/safety_symlinks.py");
}

Test(safety, resume_continues_only_the_same_job_and_verify_checks_copies, .timeout = 600)
{
    run_safety_script("tests/ref/safety_resume.py");
}

Test(safety, destination_overlapping_a_source_or_not_modelprep_is_refused, .timeout = 600)
{
    run_safety_script("tests/ref/safety_overlap.py");
}

Test(safety, a_locked_partial_directory_is_never_removed_or_reused, .timeout = 600)
{
    run_safety_script("tests/ref/safety_lock.py");
}
