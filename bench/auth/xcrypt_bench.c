/* The libxcrypt twin of `pop3d-auth-bench verify` (bench/auth/src/main.rs):
 * reads `label<TAB>password<TAB>hash` lines from FILE and prints, for each,
 * the median thread CPU time of RUNS crypt_rn(3) calls as
 * `label<TAB>nanoseconds`,
 * checking that each call reproduces the hash. Built by bench/auth/run.sh
 * with `gcc -O2 ... -lcrypt`. */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* CPU time of this thread, as the Rust twin measures it. */
static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: xcrypt_bench FILE RUNS\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	int runs = atoi(argv[2]);
	long long *times = calloc((size_t)runs, sizeof *times);
	struct crypt_data *data = calloc(1, sizeof *data);
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			continue;
		char *label = line, *pw = strchr(label, '\t');
		if (!pw)
			return 1;
		*pw++ = 0;
		char *hash = strchr(pw, '\t');
		if (!hash)
			return 1;
		*hash++ = 0;
		for (int i = 0; i < runs; i++) {
			long long t = now_ns();
			char *out = crypt_rn(pw, hash, data, sizeof *data);
			times[i] = now_ns() - t;
			if (!out || strcmp(out, hash) != 0) {
				fprintf(stderr, "%s: libxcrypt does not reproduce the hash\n", label);
				return 1;
			}
		}
		qsort(times, (size_t)runs, sizeof *times, cmp);
		printf("%s\t%lld\n", label, times[runs / 2]);
	}
	return 0;
}
