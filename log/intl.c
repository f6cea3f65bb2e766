#include <sys/stat.h>

#include <libintl.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "i18n.h"
#include "intl.h"

/* Where the catalogues are installed, absolute and from the programs'
 * directory (CMake sets both from the install layout). */
#ifndef INDICATOR_LOCALEDIR
#define INDICATOR_LOCALEDIR "/usr/share/locale"
#endif
#ifndef INDICATOR_LOCALEDIR_REL
#define INDICATOR_LOCALEDIR_REL "../share/locale"
#endif

static const char *intl_domain;
static char intl_dir[PATH_MAX];

static const char *
intl_translate(const char *msgid)
{
	return dgettext(intl_domain, msgid);
}

/*
 * The installed catalogues next to the running program: a package
 * installed under another prefix than the build's finds its own. NULL
 * when that directory does not exist.
 */
static const char *
intl_dir_near_exe(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	struct stat sb;

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return NULL;
	*slash = '\0';
	if ((size_t)snprintf(intl_dir, sizeof(intl_dir), "%s/%s", exe,
		INDICATOR_LOCALEDIR_REL) >= sizeof(intl_dir) ||
	    stat(intl_dir, &sb) == -1 || !S_ISDIR(sb.st_mode))
		return NULL;
	return intl_dir;
}

void
intl_init(const char *domain)
{
	const char *dir = getenv("INDICATOR_LOCALEDIR");

	if (dir == NULL || dir[0] == '\0')
		dir = intl_dir_near_exe();
	if (dir == NULL)
		dir = INDICATOR_LOCALEDIR;
	setlocale(LC_MESSAGES, "");
	intl_domain = domain;
	bindtextdomain(domain, dir);
	bind_textdomain_codeset(domain, "UTF-8");
	textdomain(domain);
	i18n_translate = intl_translate;
}
