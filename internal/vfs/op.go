package vfs

import "strconv"

// Op names a filesystem operation. MemFS reports mutating operations to its
// hook and counts them for CrashAfter; the Injector chooses the operations
// its rules act on by Op.
type Op uint8

// Operations. OpCreate is an OpenFile with Create set (and Create itself);
// every other OpenFile, and Open, is OpOpen.
const (
	OpOpen Op = iota + 1
	OpCreate
	OpRead
	OpReadAt
	OpWrite
	OpWriteAt
	OpSync
	OpPreallocate
	OpTruncate
	OpStat
	OpClose
	OpRemove
	OpRemoveAll
	OpRename
	OpMkdirAll
	OpList
	OpSyncDir
	OpDiskUsage
	numOps
)

var opNames = [numOps]string{
	OpOpen:        "open",
	OpCreate:      "create",
	OpRead:        "read",
	OpReadAt:      "readat",
	OpWrite:       "write",
	OpWriteAt:     "writeat",
	OpSync:        "sync",
	OpPreallocate: "preallocate",
	OpTruncate:    "truncate",
	OpStat:        "stat",
	OpClose:       "close",
	OpRemove:      "remove",
	OpRemoveAll:   "removeall",
	OpRename:      "rename",
	OpMkdirAll:    "mkdirall",
	OpList:        "list",
	OpSyncDir:     "syncdir",
	OpDiskUsage:   "diskusage",
}

func (o Op) String() string {
	if o > 0 && o < numOps {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}
