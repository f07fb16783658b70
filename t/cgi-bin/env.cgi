#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Prints the CGI environment, one VAR=value per line, sorted.  Tests use it
# to check what a script sees (and that no secret leaks into it).
printf 'Content-Type: text/plain; charset=UTF-8\r\n\r\n'
env | LC_ALL=C sort
