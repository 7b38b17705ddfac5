/* A main() for a fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput
 * once on every file named, or in a directory named, on the command line
 * (the committed corpus).  The normal test suite builds every target with
 * it, so the corpus, crashing inputs of fixed bugs included, is replayed by
 * every `meson test` under the normal compiler and its sanitizers.  Exit 0
 * when every input ran; a failing oracle aborts. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int run_file(const char *path, size_t size)
{
	FILE *f = fopen(path, "rb");
	/* Exactly the input's size: ASan then catches a read one byte past it. */
	uint8_t *in = malloc(size ? size : 1);
	if (!f || !in || fread(in, 1, size, f) != size) {
		perror(path);
		if (f)
			fclose(f);
		free(in);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(in, size);
	free(in);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned runs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i], (size_t)st.st_size) < 0)
				return 1;
			runs++;
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[i], &names, NULL, by_name);
		if (n < 0) {
			perror(argv[i]);
			return 1;
		}
		for (int k = 0; k < n; k++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
			if (names[k]->d_name[0] != '.' && stat(path, &st) == 0 &&
			    S_ISREG(st.st_mode)) {
				if (run_file(path, (size_t)st.st_size) < 0)
					return 1;
				runs++;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("%u input(s) replayed\n", runs);
	return runs ? 0 : 1;
}
