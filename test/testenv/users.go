package testenv

// Users the native tests run their binding children as. The agents under
// test filter capture on them, and `go test ./...` runs packages side by
// side, so a user shared by two packages' tests lets each count the other's
// binds (the budget test and the restart tests once both used 4343). Each
// user belongs to one package; a new test that filters on a user takes one
// from here.
const (
	// UserContainer binds as pipeline's "container" workload.
	UserContainer = 4242
	// UserLoad runs cmd/bindwatch's load generator (restart, startup and
	// operate tests).
	UserLoad = 4343
	// UserAudit holds cmd/bindwatch's audit test listeners.
	UserAudit = 4345
	// UserFlood floods binds in pipeline's budget and flood tests.
	UserFlood = 4346
	// UserWorkload runs the listeners in pipeline's real containers (Docker,
	// a containerd CRI pod) and in the forged scope beside them.
	UserWorkload = 4347
	// UserWorkloadAudit runs the listeners in cmd/bindwatch's real Docker
	// containers that the audit judges by image.
	UserWorkloadAudit = 4348
	// UserStorm opens listeners beside test/storm.sh's root bind storm
	// (a script, not a Go test: named here so no test takes it).
	UserStorm = 4349
	// UserPackageLoad runs deploy's load generator beside the packaged
	// agent (the unpin timer's restart test).
	UserPackageLoad = 4350
	// UserAccess is internal/dacread's child: an unprivileged user holding
	// CAP_DAC_READ_SEARCH as the unit grants it, reading root's files
	// beneath a runtime state root and refused them elsewhere.
	UserAccess = 4351
	// UserOrdering floods binds and holds a listener in pipeline's
	// attack test through the agent and the audit (TestFloodAttackThroughAudit).
	UserOrdering = 4352
)
