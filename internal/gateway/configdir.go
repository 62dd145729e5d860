package gateway

import (
	"path/filepath"
	"strings"
)

// configDir is the directory relative file names in a config are resolved
// against: that of the file the config was loaded from (its Source), or ""
// (the working directory) for a config that came from no file, such as the
// embedded quick start.
func configDir(source string) string {
	if source == "" || strings.HasPrefix(source, "embedded:") {
		return ""
	}
	return filepath.Dir(source)
}
