/*
 * The programs' messages in the user's language: GNU gettext (glibc's
 * libintl), with the catalogues compiled from po/ at build time
 * (README, "Translations"). English is the source; zh_CN is complete.
 */
#ifndef INDICATOR_INTL_H
#define INDICATOR_INTL_H

/* intl.c */

/*
 * Makes the messages of this process follow the locale (LC_ALL,
 * LC_MESSAGES, LANG; LANGUAGE as gettext reads it): sets LC_MESSAGES, and
 * only it, from the environment, so that numbers are still written and
 * read with '.'; binds the text domain to its catalogues
 * ($INDICATOR_LOCALEDIR when set, for the build tree; else the installed
 * locale directory), always in UTF-8; and points the core's messages
 * (i18n.h) at it. Cannot fail: without a catalogue the messages stay
 * English.
 */
void intl_init(const char *domain);

#endif
