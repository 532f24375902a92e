import GRDB

/// The cluster database's schema, as named migrations in SQL. Append only: a migration
/// that has landed is never edited; a change is a new migration.
enum ClusterMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-cluster") { db in
            try db.execute(sql: """
                CREATE TABLE storage_class (
                    name TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 253),
                    pool_id INTEGER NOT NULL UNIQUE CHECK (pool_id > 0),
                    definition TEXT NOT NULL,
                    created_ms INTEGER NOT NULL
                );
                CREATE TABLE device (
                    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
                    path TEXT NOT NULL,
                    capacity_bytes INTEGER NOT NULL CHECK (capacity_bytes > 0),
                    host TEXT NOT NULL,
                    rack TEXT,
                    zone TEXT,
                    added_ms INTEGER NOT NULL
                );
                -- Every epoch of the cluster map, as its JSON form (docs/placement.md).
                CREATE TABLE cluster_map (
                    epoch INTEGER PRIMARY KEY NOT NULL CHECK (epoch >= 1),
                    map TEXT NOT NULL,
                    created_ms INTEGER NOT NULL
                );
                -- Where the shards of each (pool, PG, position) actually are. The mover's
                -- work is every row whose device differs from the current map's placement.
                CREATE TABLE shard_location (
                    pool_id INTEGER NOT NULL REFERENCES storage_class(pool_id) ON DELETE CASCADE,
                    pg INTEGER NOT NULL CHECK (pg >= 0),
                    position INTEGER NOT NULL CHECK (position >= 0),
                    device TEXT NOT NULL,
                    PRIMARY KEY (pool_id, pg, position)
                ) WITHOUT ROWID;
                -- Shards left on a device after their position moved: deleted, then the row.
                CREATE TABLE cleanup (
                    pool_id INTEGER NOT NULL,
                    pg INTEGER NOT NULL,
                    position INTEGER NOT NULL,
                    device TEXT NOT NULL,
                    PRIMARY KEY (pool_id, pg, position, device)
                ) WITHOUT ROWID;
                -- One row per burst of movement, for progress: totals when it started.
                CREATE TABLE movement (
                    epoch INTEGER PRIMARY KEY NOT NULL REFERENCES cluster_map(epoch),
                    total_positions INTEGER NOT NULL CHECK (total_positions >= 0),
                    total_bytes INTEGER NOT NULL CHECK (total_bytes >= 0),
                    done_positions INTEGER NOT NULL DEFAULT 0 CHECK (done_positions >= 0),
                    done_bytes INTEGER NOT NULL DEFAULT 0 CHECK (done_bytes >= 0),
                    started_ms INTEGER NOT NULL,
                    finished_ms INTEGER
                );
                CREATE TABLE volume (
                    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
                    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 1024),
                    class_name TEXT NOT NULL REFERENCES storage_class(name) ON DELETE RESTRICT,
                    capacity_bytes INTEGER NOT NULL CHECK (capacity_bytes >= 0),
                    state TEXT NOT NULL CHECK (state IN ('creating', 'available', 'deleting')),
                    parameters TEXT NOT NULL DEFAULT '{}',
                    created_ms INTEGER NOT NULL
                );
                """)
        }
        // Admission sums a class's provisioned bytes on every CreateVolume.
        migrator.registerMigration("v2-volume-class-index") { db in
            try db.execute(sql: "CREATE INDEX volume_class ON volume(class_name, capacity_bytes)")
        }
        // What lets the control plane cost what moves, not how many volumes exist: the
        // mover, plans, epoch commits and degraded counts read the objects of a PG here
        // instead of opening every volume's database. Start-up reads only the volumes that
        // were open (their objects may have changed since the index last heard of them) and
        // every volume's last measured usage from here.
        migrator.registerMigration("v3-object-index") { db in
            try db.execute(sql: """
                -- Every object of every volume, by pool and PG. While a volume is open this is
                -- a superset of its database's object rows: a row is added before the object's
                -- own row and shards exist, and removed after they are gone.
                CREATE TABLE pg_object (
                    object_id TEXT PRIMARY KEY NOT NULL CHECK (length(object_id) = 32),
                    pool_id INTEGER NOT NULL CHECK (pool_id > 0),
                    pg INTEGER NOT NULL CHECK (pg >= 0),
                    volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
                    -- What one position of the PG stores for it: one shard file, header included.
                    shard_bytes INTEGER NOT NULL CHECK (shard_bytes >= 0)
                ) WITHOUT ROWID;
                CREATE INDEX pg_object_by_pg ON pg_object(pool_id, pg);
                CREATE INDEX pg_object_by_volume ON pg_object(volume_id);
                -- Volumes open for writing: their object rows may be ahead of pg_object (after a
                -- crash) and their usage unmeasured. Start-up reconciles exactly these. Every
                -- volume that existed before the index is one of them once.
                CREATE TABLE volume_in_use (
                    volume_id TEXT PRIMARY KEY NOT NULL REFERENCES volume(id) ON DELETE CASCADE
                ) WITHOUT ROWID;
                INSERT INTO volume_in_use (volume_id) SELECT id FROM volume;
                -- Each volume's usage as last measured (live objects only): capacity reports and
                -- admission read these instead of every volume's database.
                CREATE TABLE volume_usage (
                    volume_id TEXT PRIMARY KEY NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                    stored_bytes INTEGER NOT NULL CHECK (stored_bytes >= 0),
                    live_bytes INTEGER NOT NULL CHECK (live_bytes >= 0)
                ) WITHOUT ROWID;
                """)
        }
        // Devices of other hosts, served by their node agents (docs/cluster.md): the agent's
        // HOST:PORT. NULL: a directory on this machine (`path`).
        migrator.registerMigration("v4-device-agent") { db in
            try db.execute(sql: "ALTER TABLE device ADD COLUMN agent TEXT CHECK (agent IS NULL OR length(agent) BETWEEN 3 AND 300)")
        }
        // PGs holding objects written while a member was unreachable (a degraded write: fewer
        // shards than the class keeps, at least its minimum): the mover rebuilds their missing
        // shards once every member answers again, then the row goes.
        migrator.registerMigration("v5-pg-recovery") { db in
            try db.execute(sql: """
                CREATE TABLE pg_recovery (
                    pool_id INTEGER NOT NULL CHECK (pool_id >= 0),
                    pg INTEGER NOT NULL CHECK (pg >= 0),
                    PRIMARY KEY (pool_id, pg)
                ) WITHOUT ROWID
                """)
        }
        // Each degraded write bumps its PG's generation; recovery clears the row only if no
        // write marked it again while it ran (a write in flight when the member returned).
        migrator.registerMigration("v6-pg-recovery-generation") { db in
            try db.execute(sql: "ALTER TABLE pg_recovery ADD COLUMN generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0)")
        }
        // Which devices the health check (not an admin) marked down or out: a daemon that
        // restarts must still bring such a device back when its host answers again.
        migrator.registerMigration("v7-health-marks") { db in
            try db.execute(sql: """
                CREATE TABLE health_mark (
                    device TEXT PRIMARY KEY NOT NULL REFERENCES device(id) ON DELETE CASCADE,
                    state TEXT NOT NULL CHECK (state IN ('down', 'out'))
                );
                """)
        }
        // Snapshots and clones (docs/snapshots.md). A snapshot is a namespace of its own, a
        // row here of kind 'snapshot' with a database beside the volumes'; names are unique
        // per kind (CSI keeps volume and snapshot names apart). `source`: what a volume or
        // snapshot was made from ('volume:ID', 'snapshot:ID'), for CSI's idempotent repeats.
        // `object_holder`: every namespace holding an object that more than one ever held.
        // An object with no row here belongs to the one namespace whose database has it; a
        // holder letting go of an object deletes its shards only if no other row names it.
        // The volume table is rebuilt as SQLite's ALTER TABLE procedure has it (GRDB runs
        // the migration with foreign keys off and checks them before it commits).
        migrator.registerMigration("v8-snapshots") { db in
            try db.execute(sql: """
                CREATE TABLE volume_v8 (
                    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
                    class_name TEXT NOT NULL REFERENCES storage_class(name) ON DELETE RESTRICT,
                    capacity_bytes INTEGER NOT NULL CHECK (capacity_bytes >= 0),
                    state TEXT NOT NULL CHECK (state IN ('creating', 'available', 'deleting')),
                    parameters TEXT NOT NULL DEFAULT '{}',
                    created_ms INTEGER NOT NULL,
                    kind TEXT NOT NULL DEFAULT 'volume' CHECK (kind IN ('volume', 'snapshot')),
                    source TEXT CHECK (source IS NULL OR source LIKE 'volume:%' OR source LIKE 'snapshot:%'),
                    UNIQUE (kind, name)
                );
                INSERT INTO volume_v8 (id, name, class_name, capacity_bytes, state, parameters, created_ms)
                    SELECT id, name, class_name, capacity_bytes, state, parameters, created_ms FROM volume;
                DROP TABLE volume;
                ALTER TABLE volume_v8 RENAME TO volume;
                CREATE INDEX volume_class ON volume(class_name, capacity_bytes);
                CREATE INDEX volume_by_source ON volume(source) WHERE source IS NOT NULL;
                CREATE TABLE object_holder (
                    object_id TEXT NOT NULL CHECK (length(object_id) = 32),
                    holder TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                    PRIMARY KEY (object_id, holder)
                ) WITHOUT ROWID;
                CREATE INDEX object_holder_by_holder ON object_holder(holder);
                """)
        }
        // Clones made into another class than their source's: their objects are still in the
        // source's pool and are copied into their own in the background (docs/snapshots.md).
        // The row goes once none is left; start-up reconciles these volumes like open ones.
        migrator.registerMigration("v9-clone-copies") { db in
            try db.execute(sql: """
                CREATE TABLE clone_copy (
                    volume_id TEXT PRIMARY KEY NOT NULL REFERENCES volume(id) ON DELETE CASCADE
                ) WITHOUT ROWID;
                """)
        }
        // Devices in maintenance (`provisionctl maintenance`): down, never taken out by the
        // health check, until `until_ms` (wall clock; NULL: until stopped).
        migrator.registerMigration("v10-maintenance") { db in
            try db.execute(sql: """
                CREATE TABLE maintenance (
                    device TEXT PRIMARY KEY NOT NULL REFERENCES device(id) ON DELETE CASCADE,
                    started_ms INTEGER NOT NULL,
                    until_ms INTEGER
                ) WITHOUT ROWID;
                """)
        }
        // Every namespace that ever shared an object, for as long as it exists: its let-gos
        // must ask `object_holder` even after its own rows there are gone (a crash between
        // letting go of a shared object and removing its row leaves the row to start-up).
        migrator.registerMigration("v11-sharing-holders") { db in
            try db.execute(sql: """
                CREATE TABLE sharing_holder (
                    volume_id TEXT PRIMARY KEY NOT NULL REFERENCES volume(id) ON DELETE CASCADE
                ) WITHOUT ROWID;
                INSERT INTO sharing_holder (volume_id) SELECT DISTINCT holder FROM object_holder;
                """)
        }
        return migrator
    }
}

/// A volume database's schema: the objects holding the volume's data. The filesystem adds
/// its namespace tables in later migrations of the same database.
enum VolumeMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-objects") { db in
            try db.execute(sql: """
                -- 'writing': shards may be partly written; collected at start if still so.
                -- 'live': every shard durable. 'deleting': shards being removed.
                CREATE TABLE object (
                    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 32),
                    pool_id INTEGER NOT NULL CHECK (pool_id > 0),
                    pg INTEGER NOT NULL CHECK (pg >= 0),
                    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
                    state TEXT NOT NULL CHECK (state IN ('writing', 'live', 'deleting')),
                    created_ms INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX object_by_pg ON object(pool_id, pg);
                CREATE INDEX object_by_state ON object(state) WHERE state <> 'live';
                """)
        }
        migrator.registerMigration("v2-namespace") { db in
            try db.execute(sql: """
                -- One row per file, directory, symlink or special file. ino 1 is the root.
                CREATE TABLE inode (
                    ino INTEGER PRIMARY KEY,
                    kind INTEGER NOT NULL CHECK (kind IN (1, 2, 4, 6, 8, 10, 12)),  -- S_IFMT >> 12
                    mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 4095),
                    uid INTEGER NOT NULL,
                    gid INTEGER NOT NULL,
                    size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
                    nlink INTEGER NOT NULL CHECK (nlink >= 0),
                    rdev INTEGER NOT NULL DEFAULT 0,
                    atime_ns INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    ctime_ns INTEGER NOT NULL,
                    target BLOB
                );
                -- Names are bytes, as POSIX has them.
                CREATE TABLE dentry (
                    parent INTEGER NOT NULL REFERENCES inode(ino),
                    name BLOB NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
                    ino INTEGER NOT NULL REFERENCES inode(ino),
                    PRIMARY KEY (parent, name)
                ) WITHOUT ROWID;
                CREATE INDEX dentry_by_ino ON dentry(ino);
                -- A file's data: per chunk, slices in id order, later ones shadowing earlier
                -- ones. object NULL is a hole (reads as zeros), written by truncation.
                CREATE TABLE slice (
                    id INTEGER PRIMARY KEY,
                    ino INTEGER NOT NULL REFERENCES inode(ino) ON DELETE CASCADE,
                    chunk INTEGER NOT NULL CHECK (chunk >= 0),
                    pos INTEGER NOT NULL CHECK (pos >= 0),
                    len INTEGER NOT NULL CHECK (len > 0),
                    object TEXT,
                    object_off INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX slice_by_chunk ON slice(ino, chunk, id);
                CREATE INDEX slice_by_object ON slice(object);
                CREATE TABLE xattr (
                    ino INTEGER NOT NULL REFERENCES inode(ino) ON DELETE CASCADE,
                    name BLOB NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (ino, name)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v3-sync-marker") { db in
            try db.execute(sql: """
                -- A row a durable commit can touch, so its WAL fsync covers earlier commits.
                CREATE TABLE sync_marker (id INTEGER PRIMARY KEY CHECK (id = 1), counter INTEGER NOT NULL);
                INSERT INTO sync_marker (id, counter) VALUES (1, 0);
                """)
        }
        migrator.registerMigration("v4-settling-objects") { db in
            try db.execute(sql: """
                -- 'writing' objects of the engine's own writes (not the filesystem's staged
                -- ones): their row is made durable while their shards are written, so one
                -- still here at start may have been acknowledged. Start-up keeps it if it
                -- reads back and collects it only if its shards are provably incomplete.
                CREATE TABLE settling_object (
                    id TEXT PRIMARY KEY NOT NULL REFERENCES object(id) ON DELETE CASCADE
                ) WITHOUT ROWID;
                """)
        }
        // The same namespace with constraints that cost less per change, measured (callgrind,
        // a create and an unlink of an empty file: 337 k → 244 k instructions with Python's
        // driver around them): `kind IN (…)` built a temporary b-tree of the seven kinds on
        // every inode INSERT and UPDATE; the ON DELETE CASCADE of slices and xattrs ran two
        // trigger programs (one with a temporary b-tree) on every inode DELETE, where most
        // files have neither. The filesystem now deletes an inode's slices and xattrs itself
        // (`Namespace.deleteUnlinkedInode`); the foreign keys still refuse an inode deleted
        // before them. Tables are rebuilt as SQLite's ALTER TABLE procedure has it, foreign
        // keys off while the migration runs (GRDB's deferred checks run before it commits).
        migrator.registerMigration("v5-cheaper-namespace-constraints") { db in
            try db.execute(sql: """
                CREATE TABLE inode_v5 (
                    ino INTEGER PRIMARY KEY,
                    kind INTEGER NOT NULL CHECK (kind = 1 OR (kind BETWEEN 2 AND 12 AND kind % 2 = 0)),  -- S_IFMT >> 12
                    mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 4095),
                    uid INTEGER NOT NULL,
                    gid INTEGER NOT NULL,
                    size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
                    nlink INTEGER NOT NULL CHECK (nlink >= 0),
                    rdev INTEGER NOT NULL DEFAULT 0,
                    atime_ns INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    ctime_ns INTEGER NOT NULL,
                    target BLOB
                );
                INSERT INTO inode_v5 SELECT * FROM inode;
                DROP TABLE inode;
                ALTER TABLE inode_v5 RENAME TO inode;
                CREATE TABLE slice_v5 (
                    id INTEGER PRIMARY KEY,
                    ino INTEGER NOT NULL REFERENCES inode(ino),
                    chunk INTEGER NOT NULL CHECK (chunk >= 0),
                    pos INTEGER NOT NULL CHECK (pos >= 0),
                    len INTEGER NOT NULL CHECK (len > 0),
                    object TEXT,
                    object_off INTEGER NOT NULL DEFAULT 0
                );
                INSERT INTO slice_v5 SELECT * FROM slice;
                DROP TABLE slice;
                ALTER TABLE slice_v5 RENAME TO slice;
                CREATE INDEX slice_by_chunk ON slice(ino, chunk, id);
                CREATE INDEX slice_by_object ON slice(object);
                CREATE TABLE xattr_v5 (
                    ino INTEGER NOT NULL REFERENCES inode(ino),
                    name BLOB NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (ino, name)
                ) WITHOUT ROWID;
                INSERT INTO xattr_v5 SELECT * FROM xattr;
                DROP TABLE xattr;
                ALTER TABLE xattr_v5 RENAME TO xattr;
                """)
        }
        // A volume whose namespace a `NamespaceStore` keeps (the cluster's PostgreSQL):
        // the keys of rows changed since the last shipment (written by triggers that only a
        // mirrored volume's connection has, `NamespaceMirror`), and the version of the
        // store's copy this database last matched, with the lease generation it was
        // written under. Empty and unused in the embedded default.
        migrator.registerMigration("v6-namespace-mirror") { db in
            try db.execute(sql: """
                CREATE TABLE mirror_change (
                    seq INTEGER PRIMARY KEY,
                    tbl INTEGER NOT NULL CHECK (tbl BETWEEN 0 AND 5),
                    k1 NOT NULL,
                    k2
                );
                CREATE TABLE mirror_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    version INTEGER NOT NULL CHECK (version >= 0),
                    generation INTEGER NOT NULL CHECK (generation >= 0)
                );
                INSERT INTO mirror_state (id, version, generation) VALUES (1, 0, 0);
                """)
        }
        return migrator
    }
}
