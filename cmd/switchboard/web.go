package main

import (
	"io/fs"

	"github.com/switchboard/switchboard/web"
)

func webFS() fs.FS { return web.FS() }
