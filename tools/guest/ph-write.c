// SPDX-License-Identifier: GPL-2.0
/*
 * ph-write: one write(2) of exact bytes to a file, for the knob tests.
 *
 *   ph-write [-u UID] FILE BYTES
 *
 * BYTES takes C escapes: \n, \t, \r, \0 and \xHH. With -u the write is made
 * as that user (and group). Prints "ok N" (bytes written) or the errno name
 * (EINVAL, EACCES, ...) and exits 0 either way; 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t unescape(const char *s, char *out)
{
	size_t n = 0;

	while (*s) {
		if (*s != '\\' || !s[1]) {
			out[n++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': out[n++] = '\n'; s++; break;
		case 't': out[n++] = '\t'; s++; break;
		case 'r': out[n++] = '\r'; s++; break;
		case '0': out[n++] = '\0'; s++; break;
		case 'x': {
			char hex[3] = { s[1], s[1] ? s[2] : 0, 0 };

			out[n++] = (char)strtoul(hex, NULL, 16);
			s += 1 + strlen(hex);
			break;
		}
		default: out[n++] = *s++; break;
		}
	}
	return n;
}

static const char *errname(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ERANGE: return "ERANGE";
	case ENODEV: return "ENODEV";
	case EIO: return "EIO";
	default: return "EOTHER";
	}
}

int main(int argc, char **argv)
{
	static char buf[65536];
	int fd, arg = 1;
	size_t n;
	ssize_t w;

	if (argc > 2 && !strcmp(argv[1], "-u")) {
		uid_t uid = (uid_t)strtoul(argv[2], NULL, 0);

		if (setgid(uid) || setuid(uid)) {
			perror("setuid");
			return 2;
		}
		arg = 3;
	}
	if (argc != arg + 2) {
		fprintf(stderr, "usage: ph-write [-u UID] FILE BYTES\n");
		return 2;
	}
	if (strlen(argv[arg + 1]) >= sizeof(buf)) {
		fprintf(stderr, "ph-write: BYTES too long\n");
		return 2;
	}
	n = unescape(argv[arg + 1], buf);
	fd = open(argv[arg], O_WRONLY);
	if (fd < 0) {
		printf("%s\n", errname(errno));
		return 0;
	}
	w = write(fd, buf, n);
	if (w < 0)
		printf("%s\n", errname(errno));
	else
		printf("ok %zd\n", w);
	close(fd);
	return 0;
}
