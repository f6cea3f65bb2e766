/*
 * Translation of the messages the core writes for people (the CSV
 * parser's), without tying the core to a locale or to libintl: a program
 * that wants them translated points i18n_translate at its gettext (the
 * agent does, for its text domain; see agents/agent_i18n.c). Until then
 * they are English, the source language.
 *
 * Mark a message with _() where it is used and N_() where it is only
 * stored (a table of names); xgettext finds both (po/, "Translations" in
 * the README).
 */
#ifndef INDICATOR_I18N_H
#define INDICATOR_I18N_H

/* i18n.c */

/* msgid's translation, or msgid itself; never NULL. Not thread-safe to
 * change while messages are being written. */
extern const char *(*i18n_translate)(const char *msgid);

/* The translation of msgid, through i18n_translate. The attribute lets
 * the compiler check printf arguments against the English format. */
static inline __attribute__((format_arg(1))) const char *
i18n_tr(const char *msgid)
{
	return i18n_translate(msgid);
}

#define _(s) i18n_tr(s)
#define N_(s) (s)

#endif
