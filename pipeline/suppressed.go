package pipeline

import (
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
)

// suppressedInterval is how often the agent reports what users' budgets
// dropped.
const suppressedInterval = 10 * time.Second

// reportSuppressed sends a suppressed record for each user whose budget
// dropped records since the last report: who flooded, and how much of it
// is missing; and one with a count of 0 for each user whose flood is over
// (it dropped nothing since the last report), after which the caller
// retakes the inventory, so that the audit can tell when the view is whole
// again. The records are numbered like any other. It says whether a flood
// ended.
func (a *Agent) reportSuppressed(out chan<- record.Record) (floodEnded bool) {
	now, err := a.probe.Suppressed()
	if err != nil {
		a.log.Warn("user budgets unreadable", "component", "agent", "error", err)
		return false
	}
	var uids []uint32
	for uid, n := range now {
		if n.Total() > a.suppressedReported[uid].Total() || a.flooding[uid] {
			uids = append(uids, uid)
		}
	}
	if len(uids) == 0 {
		return false
	}
	slices.Sort(uids)
	first, err := a.probe.ReserveSeq(uint64(len(uids)))
	if err != nil {
		a.log.Warn("suppressed records not numbered", "component", "agent", "error", err)
		return false
	}
	at := time.Now()
	for i, uid := range uids {
		was := a.suppressedReported[uid]
		n := now[uid].Total() - was.Total()
		out <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSuppressed, Seq: int64(first) + int64(i),
			Time: at, UID: int64(uid), Suppressed: int64(n)}, Rest: len(uids) - 1 - i}
		a.suppressedReported[uid] = now[uid]
		if n == 0 {
			delete(a.flooding, uid)
			floodEnded = true
			a.log.Info("a user's flood is over", "component", "agent", "uid", uid)
			continue
		}
		a.flooding[uid] = true
		a.log.Warn("a user's records went over its budget", "component", "agent", "uid", uid, "suppressed", n,
			"binds", now[uid].Binds-was.Binds, "listens_and_closes", now[uid].Listeners-was.Listeners)
	}
	return floodEnded
}
