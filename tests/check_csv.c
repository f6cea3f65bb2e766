/*
 * The CSV push parser: good files give exactly the rows a clerk wrote (in
 * English or by the registry's Chinese names, numbers and periods as Excel
 * and clerks write them, Excel's empty rows and columns skipped), bad
 * ones fail on the right line and column with a reason a person can act
 * on, every problem of a file is reported, and the result does not depend
 * on how the input was cut into chunks.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "csv.h"

#define HDR "industry,metric,period,value,unit\n"
#define HDR7 "industry,metric,period,value,unit,status,note\n"
#define BOM "\xef\xbb\xbf"
#define MAX_ROWS 12
#define MAX_PROBLEMS 8

struct exp_row {
	unsigned line;
	const char *industry;
	const char *metric;
	const char *period;
	double value;
	const char *unit;
	int status;
	const char *note;
};

static const struct good_case {
	const char *name;
	bool reg; /* with the default registry */
	const char *input;
	size_t nrows;
	struct exp_row rows[MAX_ROWS];
} good[] = {
	{ "plain", false,
	    HDR "photonics,output_value,2025,12.5,CNY_100M\n"
		"quantum,chain_leaders,2025-Q3,3,count\n",
	    2,
	    { { 2, "photonics", "output_value", "2025", 12.5, "CNY_100M", 0,
		  "" },
		{ 3, "quantum", "chain_leaders", "2025-Q3", 3, "count", 0,
		    "" } } },
	{ "quoted", false,
	    HDR7 "\"photonics\",output_value,2025-09,\"150\",CNY_10K,final,"
		 "\"a, b \"\"c\"\"\"\n"
		 "hydrogen,pilot_parks,2025,\"2\",count,\"\",\"\"\"\"\n",
	    2,
	    { { 2, "photonics", "output_value", "2025-09", 150, "CNY_10K", 2,
		  "a, b \"c\"" },
		{ 3, "hydrogen", "pilot_parks", "2025", 2, "count", 0,
		    "\"" } } },
	{ "crlf", false,
	    "industry,metric,period,value,unit\r\n"
	    "photonics,output_value,2025,1,CNY_100M\r\n"
	    "quantum,output_value,2024,2,CNY_100M\r\n",
	    2,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 3, "quantum", "output_value", "2024", 2, "CNY_100M", 0,
		    "" } } },
	{ "bom", false, BOM HDR "materials,output_value,2025,7,CNY_100M\n", 1,
	    { { 2, "materials", "output_value", "2025", 7, "CNY_100M", 0,
		"" } } },
	{ "reordered", false,
	    "note,unit,value,period,metric,industry,status\n"
	    "first,count,4,2025-Q1,core_products,cellgene,Provisional\n",
	    1,
	    { { 2, "cellgene", "core_products", "2025-Q1", 4, "count", 1,
		"first" } } },
	{ "header names any case, spaced", false,
	    " Industry , METRIC,Period,Value\t,unit,Status\n"
	    "digifin,app_scenarios,2025,9,count,REVISED\n",
	    1,
	    { { 2, "digifin", "app_scenarios", "2025", 9, "count", 3, "" } } },
	{ "codes and value trimmed, note kept", false,
	    HDR7 " photonics ,output_value, 2025 , 1e3 , CNY_100M , final ,"
		 "  two spaces \n",
	    1,
	    { { 2, "photonics", "output_value", "2025", 1000, "CNY_100M", 2,
		"  two spaces " } } },
	{ "tab in a note kept, quoted comma too", false,
	    HDR7 "metaverse,output_value,2025,3.25,CNY_100M,,\"a\tb, c\"\n"
		 "aerospace,output_value,2025,-0.5,CNY_100M,,\n",
	    2,
	    { { 2, "metaverse", "output_value", "2025", 3.25, "CNY_100M", 0,
		  "a\tb, c" },
		{ 3, "aerospace", "output_value", "2025", -0.5, "CNY_100M", 0,
		    "" } } },
	{ "last line without newline", false,
	    HDR "photonics,output_value,2025,1,CNY_100M\n"
		"quantum,output_value,2025,2,CNY_100M",
	    2,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 3, "quantum", "output_value", "2025", 2, "CNY_100M", 0,
		    "" } } },
	{ "last quoted field without newline", false,
	    HDR7 "quantum,output_value,2025,2,CNY_100M,,\"end\"", 1,
	    { { 2, "quantum", "output_value", "2025", 2, "CNY_100M", 0,
		"end" } } },
	{ "header only", false, HDR, 0, { { 0 } } },
	{ "header only, no newline", false, "industry,metric,period,value,unit",
	    0, { { 0 } } },
	{ "blank lines skipped", false,
	    "\n\r\n" HDR "\n  \nphotonics,output_value,2025,1,CNY_100M\n\n"
	    "quantum,output_value,2025,2,CNY_100M\n\n\n",
	    2,
	    { { 6, "photonics", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 8, "quantum", "output_value", "2025", 2, "CNY_100M", 0,
		    "" } } },
	{ "UTF-8 note", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,昆山 光子\n", 1,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0,
		"昆山 光子" } } },
	{ "fields at their limits", false,
	    HDR7 "abcdefghijklmnopqrstuvwxyz012345,m,2025-Q3,0,"
		 "abcdefghijklmnop,,"
		 "0123456789012345678901234567890123456789012345678901234567890"
		 "1234567890123456789012345678901234567890123456789012345678901"
		 "2345678901234567890123456789012345678901234567890123456789012"
		 "3456789012345678901234567890123456789012345678901234567890123"
		 "456789012345\n",
	    1,
	    { { 2, "abcdefghijklmnopqrstuvwxyz012345", "m", "2025-Q3", 0,
		"abcdefghijklmnop", 0,
		"0123456789012345678901234567890123456789012345678901234567890"
		"1234567890123456789012345678901234567890123456789012345678901"
		"2345678901234567890123456789012345678901234567890123456789012"
		"3456789012345678901234567890123456789012345678901234567890123"
		"456789012345" } } },
	{ "BOM-like bytes later are data", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,," BOM "x\n", 1,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0,
		BOM "x" } } },
	{ "Chinese header, names, units and statuses", true,
	    "行业,指标,报告期,数值,单位,状态,备注\n"
	    "前沿新材料,总产值,2025年,\"1,234.5\",亿元,初步,昆山 光子\n"
	    "光子芯片与光器件,链主企业,2025年第三季度,3,家,正式,\n"
	    "量子,产值,2025年9月,120000,万元,修订,\n",
	    3,
	    { { 2, "materials", "output_value", "2025", 1234.5, "CNY_100M", 1,
		  "昆山 光子" },
		{ 3, "photonics", "chain_leaders", "2025-Q3", 3, "count", 2,
		    "" },
		{ 4, "quantum", "output_value", "2025-09", 120000, "CNY_10K", 3,
		    "" } } },
	{ "codes and names in any case, spaced", true,
	    " Industry , 指标 ,PERIOD,Value,单位\n"
	    " Materials ,OUTPUT_VALUE, 2025 ,12,cny_100m\n"
	    "\xe3\x80\x80元宇宙\xe3\x80\x80,\xc2\xa0"
	    "App_Scenarios,2025-q1,"
	    "4,COUNT\n",
	    2,
	    { { 2, "materials", "output_value", "2025", 12, "CNY_100M", 0, "" },
		{ 3, "metaverse", "app_scenarios", "2025-Q1", 4, "count", 0,
		    "" } } },
	{ "every period form", true,
	    HDR "materials,output_value,2015,1,CNY_100M\n"
		"materials,output_value,2016年,1,CNY_100M\n"
		"materials,output_value,2017-09,1,CNY_100M\n"
		"materials,output_value,2018-9,1,CNY_100M\n"
		"materials,output_value,2019/9,1,CNY_100M\n"
		"materials,output_value,2020/09,1,CNY_100M\n"
		"materials,output_value,2021年9月,1,CNY_100M\n"
		"materials,output_value,2022年12月,1,CNY_100M\n"
		"materials,output_value,2023-Q3,1,CNY_100M\n"
		"materials,output_value,2024q4,1,CNY_100M\n"
		"materials,output_value,2025年第三季度,1,CNY_100M\n"
		"materials,output_value,2014年3季度,1,CNY_100M\n",
	    12,
	    { { 2, "materials", "output_value", "2015", 1, "CNY_100M", 0, "" },
		{ 3, "materials", "output_value", "2016", 1, "CNY_100M", 0,
		    "" },
		{ 4, "materials", "output_value", "2017-09", 1, "CNY_100M", 0,
		    "" },
		{ 5, "materials", "output_value", "2018-09", 1, "CNY_100M", 0,
		    "" },
		{ 6, "materials", "output_value", "2019-09", 1, "CNY_100M", 0,
		    "" },
		{ 7, "materials", "output_value", "2020-09", 1, "CNY_100M", 0,
		    "" },
		{ 8, "materials", "output_value", "2021-09", 1, "CNY_100M", 0,
		    "" },
		{ 9, "materials", "output_value", "2022-12", 1, "CNY_100M", 0,
		    "" },
		{ 10, "materials", "output_value", "2023-Q3", 1, "CNY_100M", 0,
		    "" },
		{ 11, "materials", "output_value", "2024-Q4", 1, "CNY_100M", 0,
		    "" },
		{ 12, "materials", "output_value", "2025-Q3", 1, "CNY_100M", 0,
		    "" },
		{ 13, "materials", "output_value", "2014-Q3", 1, "CNY_100M", 0,
		    "" } } },
	{ "numbers as Excel writes them", false,
	    HDR "a,output_value,2025,\"1,234,567.5\",CNY_100M\n"
		"b,output_value,2025,\" 42 \",CNY_100M\n"
		"c,output_value,2025,1.5E+3,CNY_100M\n"
		"d,output_value,2025,+7,CNY_100M\n"
		"e,output_value,2025,1 234.5,CNY_100M\n"
		"f,output_value,2025,１２３．５,CNY_100M\n"
		"g,output_value,2025,\"999,999\",CNY_100M\n"
		"h,output_value,2025,.5,CNY_100M\n",
	    8,
	    { { 2, "a", "output_value", "2025", 1234567.5, "CNY_100M", 0, "" },
		{ 3, "b", "output_value", "2025", 42, "CNY_100M", 0, "" },
		{ 4, "c", "output_value", "2025", 1500, "CNY_100M", 0, "" },
		{ 5, "d", "output_value", "2025", 7, "CNY_100M", 0, "" },
		{ 6, "e", "output_value", "2025", 1234.5, "CNY_100M", 0, "" },
		{ 7, "f", "output_value", "2025", 123.5, "CNY_100M", 0, "" },
		{ 8, "g", "output_value", "2025", 999999, "CNY_100M", 0, "" },
		{ 9, "h", "output_value", "2025", 0.5, "CNY_100M", 0, "" } } },
	{ "Excel's empty rows and columns", true,
	    ",,,,,,\r\n"
	    "industry,metric,period,value,unit,,\r\n"
	    ",,,,,,\r\n"
	    "materials,output_value,2025,1,CNY_100M,,\r\n"
	    "\"\",\" \",,,,,\r\n"
	    "quantum,output_value,2025,2,CNY_100M\r\n"
	    "hydrogen,output_value,2025,3,CNY_100M,,,,\r\n"
	    ",,,,,,\r\n",
	    3,
	    { { 4, "materials", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 6, "quantum", "output_value", "2025", 2, "CNY_100M", 0, "" },
		{ 7, "hydrogen", "output_value", "2025", 3, "CNY_100M", 0,
		    "" } } },
	{ "a code the registry lacks goes to the daemon as written", true,
	    HDR "nanotech,output_value,2025,1,CNY_100M\n", 1,
	    { { 2, "nanotech", "output_value", "2025", 1, "CNY_100M", 0,
		"" } } },
	{ "a stray BOM in the header is space", false,
	    "industry," BOM "metric,period,value,unit\n"
	    "materials,output_value,2025,1,CNY_100M\n",
	    1,
	    { { 2, "materials", "output_value", "2025", 1, "CNY_100M", 0,
		"" } } },
};

static const struct bad_case {
	const char *name;
	bool reg; /* with the default registry */
	const char *input;
	unsigned line;
	unsigned column;
	const char *msg;
} bad[] = {
	{ "empty file", false, "", 1, 0, "no header row" },
	{ "blank lines only", false, "\n\r\n  \n", 1, 0, "no header row" },
	{ "empty rows only", true, ",,,,\r\n,,,,\r\n", 1, 0,
	    "no header row; the first line must name the columns industry "
	    "(行业), metric (指标)" },
	{ "BOM only", false, BOM, 1, 0, "no header row" },
	{ "unknown column", false, "industry,metric,period,value,unit,colour\n",
	    1, 6,
	    "'colour' is not a column name; name the columns industry, "
	    "metric, period, value, unit, status, note" },
	{ "unknown Chinese column", true, "行业,指标,期,数值,单位\n", 1, 3,
	    "'期' is not a column name; name the columns industry (行业), "
	    "metric (指标), period (报告期), value (数值), unit (单位), status "
	    "(状态), note (备注)" },
	{ "repeated column", false, "industry,metric,period,value,unit,Unit \n",
	    1, 6, "'Unit' is the unit column again (it is column 5 too)" },
	{ "repeated column by its alias", true,
	    "industry,行业,metric,period,value,unit\n", 1, 2,
	    "'行业' is the industry column again (it is column 1 too)" },
	{ "missing column", false, "industry,metric,period,unit,note\n", 1, 0,
	    "the header has no value column; add one, named value" },
	{ "missing column, its alias named", true, "行业,指标,报告期,单位\n", 1,
	    0, "the header has no value column; add one, named value (数值)" },
	{ "missing column, header last line", false, "metric,period,value,unit",
	    1, 0, "the header has no industry column" },
	{ "header after blank lines", false,
	    "\n\nindustry,metric,period,value\n", 3, 0,
	    "the header has no unit column" },
	{ "header not UTF-8", false, "industry,metric,period,value,unit,\xff\n",
	    1, 6, "'\\xff' is not a column name" },
	{ "too few fields", false,
	    HDR "photonics,output_value,2025,1,CNY_100M\n"
		"photonics,output_value,2024,1\n",
	    3, 4, "this line has 4 fields but the header names 5" },
	{ "too many fields", false,
	    HDR "photonics,output_value,2025,1,CNY_100M,x\n", 2, 6,
	    "this line has 6 fields but the header names 5" },
	{ "an unnamed column holds something", false,
	    "industry,metric,period,value,unit,,\n"
	    "photonics,output_value,2025,1,CNY_100M,,\n"
	    "photonics,output_value,2024,1,CNY_100M, x ,\n",
	    3, 6, "this column has no name in the header, yet holds 'x'" },
	{ "value not a number", false,
	    HDR "photonics,output_value,2025,abc,CNY_100M\n", 2, 4,
	    "value 'abc' is not a number; write digits with a decimal point, "
	    "such as 1234.5 or 1,234.5" },
	{ "value with trailing junk", false,
	    HDR "photonics,output_value,2025,12abc,CNY_100M\n", 2, 4,
	    "value '12abc' is not a number" },
	{ "value with a unit in it", true,
	    HDR "photonics,output_value,2025,12亿元,CNY_100M\n", 2, 4,
	    "value '12亿元' is not a number" },
	{ "value with comma decimal", false,
	    HDR "photonics,output_value,2025,\"1,5\",CNY_100M\n", 2, 4,
	    "value '1,5' has a comma that does not group thousands" },
	{ "value with groups of two", false,
	    HDR "photonics,output_value,2025,\"1,23,456\",CNY_100M\n", 2, 4,
	    "value '1,23,456' has a comma that does not group thousands" },
	{ "value with a first group of four", false,
	    HDR "photonics,output_value,2025,\"1234,567\",CNY_100M\n", 2, 4,
	    "has a comma that does not group thousands" },
	{ "value with a letter after a comma", false,
	    HDR "photonics,output_value,2025,\"86,02O\",CNY_100M\n", 2, 4,
	    "value '86,02O' is not a number" },
	{ "value a percentage", false,
	    HDR "photonics,output_value,2025,12.5%,CNY_100M\n", 2, 4,
	    "value '12.5%' is a percentage; give the figure itself" },
	{ "value a full-width percentage", false,
	    HDR "photonics,output_value,2025,１２％,CNY_100M\n", 2, 4,
	    "value '１２％' is a percentage" },
	{ "value empty", false, HDR "photonics,output_value,2025,,CNY_100M\n",
	    2, 4,
	    "the value is empty; fill in the figure (0 when there is none), "
	    "or delete the line" },
	{ "value nan", false, HDR "photonics,output_value,2025,nan,CNY_100M\n",
	    2, 4, "value 'nan' is not a number" },
	{ "value inf", false,
	    HDR "photonics,output_value,2025,-Infinity,CNY_100M\n", 2, 4,
	    "value '-Infinity' is not a number" },
	{ "value hexadecimal", false,
	    HDR "photonics,output_value,2025,0x10,CNY_100M\n", 2, 4,
	    "value '0x10' is not a number" },
	{ "value overflows", false,
	    HDR "photonics,output_value,2025,1e999,CNY_100M\n", 2, 4,
	    "value '1e999' is not a number" },
	{ "industry empty", false, HDR "\"\",output_value,2025,1,CNY_100M\n", 2,
	    1, "industry is empty; fill it in" },
	{ "metric spaces only", false, HDR "photonics,   ,2025,1,CNY_100M\n", 2,
	    2, "metric is empty" },
	{ "period empty", false, HDR "photonics,output_value,,1,CNY_100M\n", 2,
	    3, "period is empty" },
	{ "unit empty", false, HDR "photonics,output_value,2025,1,\n", 2, 5,
	    "unit is empty" },
	{ "industry not in the registry", true,
	    HDR "新能源,output_value,2025,1,CNY_100M\n", 2, 1,
	    "industry '新能源' is not in the registry; write one of: materials "
	    "(前沿新材料), photonics (光子芯片与光器件), metaverse (元宇宙)" },
	{ "metric not in the registry", true,
	    HDR "photonics,总收入,2025,1,CNY_100M\n", 2, 2,
	    "metric '总收入' is not in the registry; write one of: "
	    "output_value (总产值), innovation_platforms (创新平台)" },
	{ "unit not in the registry", true,
	    HDR "photonics,output_value,2025,1,千元\n", 2, 5,
	    "unit '千元' is not in the registry; write one of: CNY_100M "
	    "(亿元), "
	    "CNY_10K (万元), CNY (元), count (个)" },
	{ "industry no code, no registry", false,
	    HDR "abcdefghijklmnopqrstuvwxyz0123456,output_value,2025,1,"
		"CNY_100M\n",
	    2, 1,
	    "industry 'abcdefghijklmnopqrstuvwxyz0123456' is not a code of at "
	    "most 32 letters, digits, '_' or '-'" },
	{ "unit no code, no registry", false,
	    HDR "photonics,output_value,2025,1,abcdefghijklmnopq\n", 2, 5,
	    "unit 'abcdefghijklmnopq' is not a code of at most 16" },
	{ "period month 13", false,
	    HDR "photonics,output_value,2025-13,1,CNY_100M\n", 2, 3,
	    "period '2025-13' is not a period; write it as one of 2025, "
	    "2025年, 2025-09, 2025/9, 2025年9月, 2025-Q3, 2025年第三季度, "
	    "2025年3季度" },
	{ "period quarter 5", false,
	    HDR "photonics,output_value,2025-Q5,1,CNY_100M\n", 2, 3,
	    "period '2025-Q5' is not a period" },
	{ "period two-digit year", false,
	    HDR "photonics,output_value,25-09,1,CNY_100M\n", 2, 3,
	    "period '25-09' is not a period" },
	{ "period a date", false,
	    HDR "photonics,output_value,2025-09-01,1,CNY_100M\n", 2, 3,
	    "period '2025-09-01' is not a period" },
	{ "period with a point", false,
	    HDR "photonics,output_value,2025.09,1,CNY_100M\n", 2, 3,
	    "period '2025.09' is not a period" },
	{ "period fifth quarter in Chinese", false,
	    HDR "photonics,output_value,2025年第五季度,1,CNY_100M\n", 2, 3,
	    "period '2025年第五季度' is not a period" },
	{ "period quarter first", false,
	    HDR "photonics,output_value,Q3 2025,1,CNY_100M\n", 2, 3,
	    "period 'Q3 2025' is not a period" },
	{ "period with junk", false,
	    HDR "photonics,output_value,2025-Q3x,1,CNY_100M\n", 2, 3,
	    "period '2025-Q3x' is not a period" },
	{ "note too long", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,"
		 "0123456789012345678901234567890123456789012345678901234567890"
		 "1234567890123456789012345678901234567890123456789012345678901"
		 "2345678901234567890123456789012345678901234567890123456789012"
		 "3456789012345678901234567890123456789012345678901234567890123"
		 "4567890123456\n",
	    2, 7, "the note is longer than 256 bytes" },
	{ "bad status", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,draft,\n", 2, 6,
	    "status 'draft' is not a status; write one of: provisional, "
	    "final, revised, or leave it empty" },
	{ "bad status, aliases listed", true,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,草稿,\n", 2, 6,
	    "write one of: provisional (初步), final (最终), revised (修订)" },
	/* The daemon refuses control characters but a note's tab (bad_string):
	 * the agent says so first, at the line where the note begins. */
	{ "multi-line quoted note", false,
	    HDR7 "metaverse,output_value,2025,3.25,CNY_100M,,\"line one\n"
		 "line two\"\n",
	    2, 7, "the note holds a line break or another control character" },
	{ "invalid UTF-8 note", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,a\xff"
		 "b\n",
	    2, 7, "note is not valid UTF-8" },
	{ "overlong UTF-8 industry", false,
	    HDR "photo\xc0\xafnics,output_value,2025,1,CNY_100M\n", 2, 1,
	    "industry is not valid UTF-8" },
	{ "unterminated quote", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,ok\n"
		 "photonics,output_value,2024,1,CNY_100M,,\"never closed\n"
		 "more\n\n",
	    3, 7, "a quoted field begins here and is never closed" },
	{ "quote inside unquoted field", false,
	    HDR "photonics,output_value,2025,1,CNY_\"100M\"\n", 2, 5,
	    "a quote inside a field that does not start with one" },
	{ "text after closing quote", false,
	    HDR "\"photonics\"x,output_value,2025,1,CNY_100M\n", 2, 1,
	    "'x' after a closing quote" },
	{ "error in a multi-line row is on its first line", false,
	    HDR7 "photonics,output_value,2025,1,CNY_100M,\"\nfinal\n\",\n", 2,
	    6, "status '\\nfinal\\n' is not" },
	{ "long value shown cut, on a character boundary", false,
	    HDR "photonics,output_value,2025,"
		"12345678901234567890123456789012345678\xe5\x85\x83"
		"abc,CNY_100M\n",
	    2, 4, "value '12345678901234567890123456789012345678...' is not" },
	{ "control characters shown escaped", false,
	    HDR "photonics,output_value,2025,\"1\x01\t\",CNY_100M\n", 2, 4,
	    "value '1\\x01' is not a number" },
	{ "the same key twice", false,
	    HDR "photonics,output_value,2025,1,CNY_100M\n"
		"quantum,output_value,2025,1,CNY_100M\n"
		"photonics,output_value,2025,2,CNY_100M\n",
	    4, 1,
	    "photonics/output_value/2025 is also on line 2; keep one of the "
	    "two lines" },
	{ "the same key twice, written two ways", true,
	    "period,industry,metric,value,unit\n"
	    "2025-9,materials,output_value,1,CNY_100M\n"
	    "2025年9月,前沿新材料,总产值,2,亿元\n",
	    3, 1, "materials/output_value/2025-09 is also on line 2" },
};

#define NGOOD (sizeof(good) / sizeof(good[0]))
#define NBAD (sizeof(bad) / sizeof(bad[0]))

struct result {
	int rc;
	unsigned line;
	unsigned column;
	char err[CSV_MSG_MAX];
	unsigned long count;
	size_t nrows;
	struct csv_row rows[MAX_ROWS];
	size_t nproblems;
	struct csv_problem problems[MAX_PROBLEMS];
	int stop_after; /* rows to accept before stopping; -1: never */
};

/* The default registry (conf/indicatord.conf), for the cases with one. */
static struct config defcfg;

static void
load_registry(void)
{
	char err[512];

	ck_assert_msg(config_parse(&defcfg, config_default_text, "default", err,
			  sizeof(err)) == 0,
	    "%s", err);
}

static int
collect(const struct csv_row *row, void *arg)
{
	struct result *r = arg;

	if (r->stop_after >= 0 && r->nrows == (size_t)r->stop_after)
		return -1;
	if (r->nrows < MAX_ROWS)
		r->rows[r->nrows] = *row;
	r->nrows++;
	return 0;
}

static void
collect_problem(const struct csv_problem *e, void *arg)
{
	struct result *r = arg;

	if (r->nproblems < MAX_PROBLEMS)
		r->problems[r->nproblems] = *e;
	r->nproblems++;
}

static struct csv_parser *
parser_new(struct result *r, bool reg)
{
	struct csv_parser *p = csv_new(collect, r);

	csv_set_problem_fn(p, collect_problem);
	if (reg)
		csv_set_registry(p, &defcfg.reg);
	return p;
}

/* Parses len bytes of input fed in pieces of chunk bytes (0: all at once). */
static void
parse(const char *input, size_t len, size_t chunk, bool reg, struct result *r)
{
	struct csv_parser *p;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->stop_after = -1;
	p = parser_new(r, reg);
	if (chunk == 0)
		chunk = len;
	r->rc = 0;
	while (off < len && r->rc == 0) {
		size_t n = len - off < chunk ? len - off : chunk;

		r->rc = csv_feed(p, input + off, n);
		off += n;
	}
	if (r->rc == 0)
		r->rc = csv_finish(p);
	else
		ck_assert_int_eq(csv_finish(p), -1);
	r->line = csv_error_line(p);
	r->column = csv_error_column(p);
	snprintf(r->err, sizeof(r->err), "%s", csv_error(p));
	r->count = csv_rows(p);
	ck_assert_uint_eq(csv_errors(p), r->nproblems);
	csv_destroy(&p);
	ck_assert_ptr_null(p);
}

static void
assert_row(const struct csv_row *got, const struct exp_row *want, size_t i)
{
	ck_assert_msg(got->line == want->line, "row %zu: line %u, want %u", i,
	    got->line, want->line);
	ck_assert_str_eq(got->industry, want->industry);
	ck_assert_str_eq(got->metric, want->metric);
	ck_assert_str_eq(got->period, want->period);
	ck_assert_msg(got->value == want->value, "row %zu: value %g, want %g",
	    i, got->value, want->value);
	ck_assert_str_eq(got->unit, want->unit);
	ck_assert_int_eq(got->status, want->status);
	ck_assert_str_eq(got->note, want->note);
}

static void
assert_same(const struct result *a, const struct result *b, const char *name,
    size_t chunk)
{
	ck_assert_msg(a->rc == b->rc && a->line == b->line &&
			  a->column == b->column && strcmp(a->err, b->err) == 0,
	    "%s: chunk %zu gives rc %d at %u:%u '%s', all at once rc %d at "
	    "%u:%u '%s'",
	    name, chunk, b->rc, b->line, b->column, b->err, a->rc, a->line,
	    a->column, a->err);
	ck_assert_uint_eq(a->nrows, b->nrows);
	ck_assert_uint_eq(a->count, b->count);
	ck_assert_uint_eq(a->nproblems, b->nproblems);
	for (size_t i = 0; i < a->nrows && i < MAX_ROWS; i++) {
		const struct csv_row *x = &a->rows[i], *y = &b->rows[i];

		ck_assert_uint_eq(x->line, y->line);
		ck_assert_str_eq(x->industry, y->industry);
		ck_assert_str_eq(x->metric, y->metric);
		ck_assert_str_eq(x->period, y->period);
		ck_assert(x->value == y->value);
		ck_assert_str_eq(x->unit, y->unit);
		ck_assert_int_eq(x->status, y->status);
		ck_assert_str_eq(x->note, y->note);
	}
	for (size_t i = 0; i < a->nproblems && i < MAX_PROBLEMS; i++) {
		ck_assert_uint_eq(a->problems[i].line, b->problems[i].line);
		ck_assert_uint_eq(a->problems[i].column, b->problems[i].column);
		ck_assert_str_eq(
		    a->problems[i].message, b->problems[i].message);
	}
}

START_TEST(test_good)
{
	const struct good_case *c = &good[_i];
	struct result r;

	parse(c->input, strlen(c->input), 0, c->reg, &r);
	ck_assert_msg(r.rc == 0, "%s: failed: %u:%u: %s", c->name, r.line,
	    r.column, r.err);
	ck_assert_str_eq(r.err, "");
	ck_assert_uint_eq(r.line, 0);
	ck_assert_uint_eq(r.nproblems, 0);
	ck_assert_msg(r.nrows == c->nrows, "%s: %zu rows, want %zu", c->name,
	    r.nrows, c->nrows);
	ck_assert_uint_eq(r.count, c->nrows);
	for (size_t i = 0; i < c->nrows; i++)
		assert_row(&r.rows[i], &c->rows[i], i);
}
END_TEST

START_TEST(test_bad)
{
	const struct bad_case *c = &bad[_i];
	struct result r;

	parse(c->input, strlen(c->input), 0, c->reg, &r);
	ck_assert_msg(r.rc == -1, "%s: accepted", c->name);
	ck_assert_msg(r.line == c->line && r.column == c->column,
	    "%s: at %u:%u, want %u:%u (%s)", c->name, r.line, r.column, c->line,
	    c->column, r.err);
	ck_assert_msg(strstr(r.err, c->msg) != NULL,
	    "%s: error '%s' lacks '%s'", c->name, r.err, c->msg);
	ck_assert_uint_eq(r.nproblems, 1);
	ck_assert_str_eq(r.problems[0].message, r.err);
	ck_assert_uint_eq(r.problems[0].line, r.line);
	ck_assert_uint_eq(r.problems[0].column, r.column);
}
END_TEST

/* Every case, good and bad, gives the same result whatever the chunking. */
START_TEST(test_chunks)
{
	static const size_t chunks[] = { 1, 2, 3, 7 };
	const char *input, *name;
	struct result whole, part;
	bool reg;

	if ((size_t)_i < NGOOD) {
		input = good[_i].input;
		name = good[_i].name;
		reg = good[_i].reg;
	} else {
		input = bad[_i - NGOOD].input;
		name = bad[_i - NGOOD].name;
		reg = bad[_i - NGOOD].reg;
	}
	parse(input, strlen(input), 0, reg, &whole);
	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		parse(input, strlen(input), chunks[k], reg, &part);
		assert_same(&whole, &part, name, chunks[k]);
	}
}
END_TEST

START_TEST(test_stopped_by_caller)
{
	const char *in = HDR "photonics,output_value,2025,1,CNY_100M\n"
			     "quantum,output_value,2025,2,CNY_100M\n"
			     "hydrogen,output_value,2025,3,CNY_100M\n";
	struct result r;
	struct csv_parser *p;

	memset(&r, 0, sizeof(r));
	r.stop_after = 1;
	p = parser_new(&r, false);
	ck_assert_int_eq(csv_feed(p, in, strlen(in)), -1);
	ck_assert_uint_eq(r.nrows, 1);
	ck_assert_uint_eq(csv_error_line(p), 3);
	ck_assert_str_eq(csv_error(p), "stopped by caller");
	csv_destroy(&p);
}
END_TEST

/* A broken structure stops the parse, and it stays stopped with the same
 * problem. */
START_TEST(test_failure_sticks)
{
	const char *in = HDR "photonics,output_value,2025,1,CNY_\"100M\"\n";
	const char *more = "quantum,output_value,2025,2,CNY_100M\n";
	struct result r;
	struct csv_parser *p;

	memset(&r, 0, sizeof(r));
	r.stop_after = -1;
	p = parser_new(&r, false);
	ck_assert_int_eq(csv_feed(p, in, strlen(in)), -1);
	ck_assert_int_eq(csv_feed(p, more, strlen(more)), -1);
	ck_assert_int_eq(csv_finish(p), -1);
	ck_assert_uint_eq(csv_error_line(p), 2);
	ck_assert_uint_eq(csv_error_column(p), 5);
	ck_assert_msg(strstr(csv_error(p), "a quote inside a field") != NULL,
	    "%s", csv_error(p));
	ck_assert_uint_eq(csv_errors(p), 1);
	ck_assert_uint_eq(r.nrows, 0);
	csv_destroy(&p);
	csv_destroy(&p);
	csv_destroy(NULL);
}
END_TEST

/*
 * A bad row does not stop the parse: every problem of every row is
 * reported, each at its line and column, and the good rows still reach
 * the callback; the file as a whole fails.
 */
START_TEST(test_every_problem)
{
	const char *in = "行业,指标,报告期,数值,单位\n"
			 "前沿新材料,总产值,2025,12.5%,亿元\n" /* 2:4 */
			 "光子芯片,产量,2025-13,abc,万元\n" /* 3:2 3:3 3:4 */
			 "量子,产值,2025,1,万元\n"
			 "前沿新材料,总产值,2025,\"1,5\",千元\n" /* 5:4 5:5 */
			 "量子技术,总产值,2025年,2,亿元\n"; /* 6:1 dup of 4 */
	static const struct {
		unsigned line, column;
		const char *msg;
	} want[] = {
		{ 2, 4, "is a percentage" },
		{ 3, 2, "metric '产量'" },
		{ 3, 3, "period '2025-13'" },
		{ 3, 4, "value 'abc'" },
		{ 5, 4, "does not group thousands" },
		{ 5, 5, "unit '千元'" },
		{ 6, 1, "quantum/output_value/2025 is also on line 4" },
	};
	struct result r;

	parse(in, strlen(in), 0, true, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_msg(r.nproblems == sizeof(want) / sizeof(want[0]),
	    "%zu problems", r.nproblems);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct csv_problem *e = &r.problems[i];

		ck_assert_msg(e->line == want[i].line &&
				  e->column == want[i].column &&
				  strstr(e->message, want[i].msg) != NULL,
		    "problem %zu: %u:%u: %s; want %u:%u: %s", i, e->line,
		    e->column, e->message, want[i].line, want[i].column,
		    want[i].msg);
	}
	/* Lines 4 and 6 are good: they reach the callback; nothing of the
	 * file counts as sendable, which is the caller's call. */
	ck_assert_uint_eq(r.nrows, 1);
	ck_assert_uint_eq(r.rows[0].line, 4);
}
END_TEST

/* Lines are counted across a field that spans lines (refused in a note)
 * and across blank lines, so that later problems name their own line. */
START_TEST(test_lines_after_span)
{
	static const char *const in[] = {
		HDR7 "photonics,output_value,2025,1,CNY_100M,,\"a\nb\nc\"\n"
		     "photonics,output_value,2024,\"1\n",
		"\r\n" HDR7 "\r\n"
		"photonics,output_value,2025,1,CNY_100M,,\"a\r\nb\"\r\n"
		"photonics,output_value,2024,x,CNY_100M,,\r\n",
	};
	static const struct {
		unsigned line, column;
		const char *msg;
	} want[][2] = {
		{ { 2, 7, "the note holds a line break" },
		    { 5, 4, "never closed" } },
		{ { 4, 7, "the note holds a line break" },
		    { 6, 4, "value 'x' is not a number" } },
	};

	for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
		struct result r;

		parse(in[k], strlen(in[k]), 0, false, &r);
		ck_assert_int_eq(r.rc, -1);
		ck_assert_uint_eq(r.nproblems, 2);
		for (size_t i = 0; i < 2; i++) {
			const struct csv_problem *e = &r.problems[i];

			ck_assert_msg(e->line == want[k][i].line &&
					  e->column == want[k][i].column &&
					  strstr(e->message, want[k][i].msg),
			    "input %zu problem %zu: %u:%u: %s", k, i, e->line,
			    e->column, e->message);
		}
	}
}
END_TEST

/* Without the uniqueness check (a second pass), a key twice is no
 * problem and no key is kept. */
START_TEST(test_not_unique)
{
	const char *in = HDR "photonics,output_value,2025,1,CNY_100M\n"
			     "photonics,output_value,2025,2,CNY_100M\n";
	struct result r;
	struct csv_parser *p;

	memset(&r, 0, sizeof(r));
	r.stop_after = -1;
	p = parser_new(&r, false);
	csv_set_unique(p, false);
	ck_assert_int_eq(csv_feed(p, in, strlen(in)), 0);
	ck_assert_int_eq(csv_finish(p), 0);
	ck_assert_uint_eq(r.nrows, 2);
	csv_destroy(&p);
}
END_TEST

/* A file with more problems than CSV_ERRORS_MAX stops after them. */
START_TEST(test_problems_capped)
{
	struct result r;
	struct csv_parser *p;
	char row[128];
	int rc = 0;

	memset(&r, 0, sizeof(r));
	r.stop_after = -1;
	p = parser_new(&r, false);
	ck_assert_int_eq(csv_feed(p, HDR, strlen(HDR)), 0);
	for (int i = 0; i < 1000 && rc == 0; i++) {
		snprintf(row, sizeof(row),
		    "photonics,output_value,%d,x,CNY_100M\n", 2000 + i);
		rc = csv_feed(p, row, strlen(row));
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(csv_finish(p), -1);
	ck_assert_uint_eq(csv_errors(p), CSV_ERRORS_MAX + 1);
	ck_assert_uint_eq(r.nproblems, CSV_ERRORS_MAX + 1);
	csv_destroy(&p);
}
END_TEST

/*
 * A huge field is not held: past the buffer its bytes are dropped and the
 * row reported, at the right line.
 */
START_TEST(test_huge_field)
{
	static const char *const pre[] = {
		HDR7 "photonics,output_value,2025,1,CNY_100M,,\"",
		HDR "photonics,output_value,2025,1",
		"industry,metric,period,value,unit,",
	};
	static const char *const post[] = { "\"\n", ",CNY_100M\n", "\n" };
	static const char *const msg[] = {
		"note is longer than 4096 bytes",
		"value is longer than 4096 bytes",
		"is not a column name",
	};
	static const unsigned line[] = { 2, 2, 1 };
	static const unsigned column[] = { 7, 4, 6 };
	size_t n = 64 * 1024;
	char *big = malloc(n);
	struct result r;
	struct csv_parser *p;

	ck_assert_ptr_nonnull(big);
	memset(big, '1', n);
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.stop_after = -1;
		p = parser_new(&r, false);
		ck_assert_int_eq(csv_feed(p, pre[i], strlen(pre[i])), 0);
		for (int k = 0; k < 16; k++)
			ck_assert_int_eq(csv_feed(p, big, n), 0);
		csv_feed(p, post[i], strlen(post[i]));
		ck_assert_int_eq(csv_finish(p), -1);
		ck_assert_uint_eq(csv_error_line(p), line[i]);
		ck_assert_uint_eq(csv_error_column(p), column[i]);
		ck_assert_msg(strstr(csv_error(p), msg[i]) != NULL,
		    "'%s' lacks '%s'", csv_error(p), msg[i]);
		csv_destroy(&p);
	}
	free(big);
}
END_TEST

/* Many rows of distinct keys stream through the callback one at a time. */
START_TEST(test_many_rows)
{
	struct result r;
	struct csv_parser *p;
	char row[128];

	memset(&r, 0, sizeof(r));
	r.stop_after = -1;
	p = parser_new(&r, false);
	ck_assert_int_eq(csv_feed(p, HDR, strlen(HDR)), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(row, sizeof(row),
		    "photonics,output_value,%d-%02d,1.5,CNY_100M\r\n",
		    1000 + i / 12, i % 12 + 1);
		ck_assert_int_eq(csv_feed(p, row, strlen(row)), 0);
	}
	ck_assert_int_eq(csv_finish(p), 0);
	ck_assert_uint_eq(csv_rows(p), 100000);
	ck_assert_uint_eq(r.nrows, 100000);
	ck_assert_uint_eq(r.rows[MAX_ROWS - 1].line, 1 + MAX_ROWS);
	csv_destroy(&p);
}
END_TEST

static Suite *
csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("parse");

	tcase_add_unchecked_fixture(tc, load_registry, NULL);
	tcase_add_loop_test(tc, test_good, 0, NGOOD);
	tcase_add_loop_test(tc, test_bad, 0, NBAD);
	tcase_add_loop_test(tc, test_chunks, 0, NGOOD + NBAD);
	tcase_add_test(tc, test_stopped_by_caller);
	tcase_add_test(tc, test_failure_sticks);
	tcase_add_test(tc, test_every_problem);
	tcase_add_test(tc, test_problems_capped);
	tcase_add_test(tc, test_lines_after_span);
	tcase_add_test(tc, test_not_unique);
	tcase_add_test(tc, test_huge_field);
	tcase_add_test(tc, test_many_rows);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
