package bolt

import bbolt "go.etcd.io/bbolt"

// ClearAgentLockValues empties every agentlocks value, as files written
// before the entries carried the lease's end have them.
func (s *Store) ClearAgentLockValues() error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bAgentLocks)
		var keys [][]byte
		b.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil })
		for _, k := range keys {
			if err := b.Put(k, []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}
