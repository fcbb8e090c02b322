/* A SQLite file read and changed from outside the code under test (its own connection, opened
 * and closed per call): what the file holds, and damage or triggers a test puts in it. */
#ifndef FDN_TEST_SQLITE_FILE_H
#define FDN_TEST_SQLITE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The first column of sql's first row as an integer; -1 without a row. */
int64_t test_sqlite_int(const char *path, const char *sql);

/* The first column of sql's first row as text into buf[0..cap) (cut to fit); false without a
 * row (buf then ""). */
bool test_sqlite_text(const char *path, const char *sql, char *buf, size_t cap);

/* Run sql (one or more statements); the test fails when it does not succeed. */
void test_sqlite_exec(const char *path, const char *sql);

#endif
