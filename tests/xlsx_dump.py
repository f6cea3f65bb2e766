#!/usr/bin/python3
"""Prints an xlsx workbook as the tests read it back, with openpyxl: the
active sheet's title, then each row as a JSON array (date-times in ISO
8601, empty cells null), then the number formats of the first data row.
Exit 1 when the file does not open as a workbook."""

import datetime
import json
import sys

import openpyxl


def cell_value(v):
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    return v


def main():
    try:
        wb = openpyxl.load_workbook(sys.argv[1])
    except Exception as e:  # any reason the file is not a workbook
        print("xlsx_dump: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    ws = wb.active
    print(ws.title)
    for row in ws.iter_rows(values_only=True):
        print(json.dumps([cell_value(v) for v in row], ensure_ascii=False))
    if ws.max_row > 1:
        print(json.dumps([c.number_format for c in ws[2]]))
    print("freeze %s filter %s" % (ws.freeze_panes, ws.auto_filter.ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
