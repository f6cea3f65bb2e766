# Writes OUT: a C file defining config_default_text[] with the bytes of IN.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1, " body "${hex}")
file(WRITE ${OUT}
	"/* Generated from conf/indicatord.conf by cmake/embed.cmake. */\n"
	"extern const char config_default_text[];\n"
	"const char config_default_text[] = { ${body}0x00 };\n")
