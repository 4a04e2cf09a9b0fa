/*
 * testutil.h - what every unit-test program shares.
 */
#ifndef TALLY_TESTUTIL_H
#define TALLY_TESTUTIL_H

#include <check.h>

/* Run every case of s; returns the exit status (EXIT_FAILURE when a test
 * failed).  Frees s. */
int test_run_suite(Suite *s);

/* Entries in a directory, "." and ".." aside; -1 when it does not exist. */
int test_count_entries(const char *dir);

#endif
