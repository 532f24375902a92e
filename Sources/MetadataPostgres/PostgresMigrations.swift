import Foundation

/// The cluster state's schema on PostgreSQL: the same tables, keys, uniqueness, foreign keys
/// and CHECKs as SQLite's (`ClusterMigrations`, whose eleven migrations it starts from, as
/// they stand at the end), as named migrations of its own. Append only: a migration that has
/// landed is never edited; a change is a new one, here and in `ClusterMigrations` alike.
/// Applied under an advisory lock, so daemons starting together apply each once. A
/// migration's SQL is split at every `;`: none may hold one inside a string or a body.
enum PostgresMigrations {
    static let all: [(name: String, sql: String)] = [
        ("v1-cluster", """
            CREATE TABLE storage_class (
                name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 253),
                pool_id BIGINT NOT NULL UNIQUE CHECK (pool_id > 0),
                definition TEXT NOT NULL,
                created_ms BIGINT NOT NULL
            );
            CREATE TABLE device (
                id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
                path TEXT NOT NULL,
                capacity_bytes BIGINT NOT NULL CHECK (capacity_bytes > 0),
                host TEXT NOT NULL,
                rack TEXT,
                zone TEXT,
                added_ms BIGINT NOT NULL,
                agent TEXT CHECK (agent IS NULL OR length(agent) BETWEEN 3 AND 300)
            );
            CREATE TABLE cluster_map (
                epoch BIGINT PRIMARY KEY CHECK (epoch >= 1),
                map TEXT NOT NULL,
                created_ms BIGINT NOT NULL
            );
            CREATE TABLE shard_location (
                pool_id BIGINT NOT NULL REFERENCES storage_class(pool_id) ON DELETE CASCADE,
                pg BIGINT NOT NULL CHECK (pg >= 0),
                position BIGINT NOT NULL CHECK (position >= 0),
                device TEXT NOT NULL,
                PRIMARY KEY (pool_id, pg, position)
            );
            CREATE TABLE cleanup (
                pool_id BIGINT NOT NULL,
                pg BIGINT NOT NULL,
                position BIGINT NOT NULL,
                device TEXT NOT NULL,
                PRIMARY KEY (pool_id, pg, position, device)
            );
            CREATE TABLE movement (
                epoch BIGINT PRIMARY KEY REFERENCES cluster_map(epoch),
                total_positions BIGINT NOT NULL CHECK (total_positions >= 0),
                total_bytes BIGINT NOT NULL CHECK (total_bytes >= 0),
                done_positions BIGINT NOT NULL DEFAULT 0 CHECK (done_positions >= 0),
                done_bytes BIGINT NOT NULL DEFAULT 0 CHECK (done_bytes >= 0),
                started_ms BIGINT NOT NULL,
                finished_ms BIGINT
            );
            CREATE TABLE volume (
                id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
                name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
                class_name TEXT NOT NULL REFERENCES storage_class(name) ON DELETE RESTRICT,
                capacity_bytes BIGINT NOT NULL CHECK (capacity_bytes >= 0),
                state TEXT NOT NULL CHECK (state IN ('creating', 'available', 'deleting')),
                parameters TEXT NOT NULL DEFAULT '{}',
                created_ms BIGINT NOT NULL,
                kind TEXT NOT NULL DEFAULT 'volume' CHECK (kind IN ('volume', 'snapshot')),
                source TEXT CHECK (source IS NULL OR source LIKE 'volume:%' OR source LIKE 'snapshot:%'),
                UNIQUE (kind, name)
            );
            CREATE INDEX volume_class ON volume(class_name, capacity_bytes);
            CREATE INDEX volume_by_source ON volume(source) WHERE source IS NOT NULL;
            CREATE TABLE pg_object (
                object_id TEXT PRIMARY KEY CHECK (length(object_id) = 32),
                pool_id BIGINT NOT NULL CHECK (pool_id > 0),
                pg BIGINT NOT NULL CHECK (pg >= 0),
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
                shard_bytes BIGINT NOT NULL CHECK (shard_bytes >= 0)
            );
            CREATE INDEX pg_object_by_pg ON pg_object(pool_id, pg);
            CREATE INDEX pg_object_by_volume ON pg_object(volume_id);
            CREATE TABLE volume_in_use (
                volume_id TEXT PRIMARY KEY REFERENCES volume(id) ON DELETE CASCADE
            );
            CREATE TABLE volume_usage (
                volume_id TEXT PRIMARY KEY REFERENCES volume(id) ON DELETE CASCADE,
                stored_bytes BIGINT NOT NULL CHECK (stored_bytes >= 0),
                live_bytes BIGINT NOT NULL CHECK (live_bytes >= 0)
            );
            CREATE TABLE pg_recovery (
                pool_id BIGINT NOT NULL CHECK (pool_id >= 0),
                pg BIGINT NOT NULL CHECK (pg >= 0),
                generation BIGINT NOT NULL DEFAULT 0 CHECK (generation >= 0),
                PRIMARY KEY (pool_id, pg)
            );
            CREATE TABLE health_mark (
                device TEXT PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
                state TEXT NOT NULL CHECK (state IN ('down', 'out'))
            );
            CREATE TABLE object_holder (
                object_id TEXT NOT NULL CHECK (length(object_id) = 32),
                holder TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                PRIMARY KEY (object_id, holder)
            );
            CREATE INDEX object_holder_by_holder ON object_holder(holder);
            CREATE TABLE clone_copy (
                volume_id TEXT PRIMARY KEY REFERENCES volume(id) ON DELETE CASCADE
            );
            CREATE TABLE maintenance (
                device TEXT PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
                started_ms BIGINT NOT NULL,
                until_ms BIGINT
            );
            CREATE TABLE sharing_holder (
                volume_id TEXT PRIMARY KEY REFERENCES volume(id) ON DELETE CASCADE
            );
            """),
        // Volumes' namespaces (`PostgresNamespaceStore`): each volume database's mirrored
        // tables (`VolumeMigrations`, as they stand at v5) with the volume's id in front of
        // every key, the same CHECKs, and foreign keys checked at commit (a shipment applies
        // one table after another). `namespace_head`: the volume's lease (holder,
        // generation, expiry by the server's clock) and the version of this copy.
        ("v2-namespaces", """
            CREATE TABLE namespace_head (
                volume_id TEXT PRIMARY KEY REFERENCES volume(id) ON DELETE CASCADE,
                holder TEXT CHECK (holder IS NULL OR length(holder) BETWEEN 1 AND 300),
                generation BIGINT NOT NULL CHECK (generation >= 0),
                expires_at TIMESTAMPTZ NOT NULL,
                version BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
                shipped_generation BIGINT NOT NULL DEFAULT 0 CHECK (shipped_generation >= 0)
            );
            CREATE TABLE ns_inode (
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                ino BIGINT NOT NULL,
                kind BIGINT NOT NULL CHECK (kind = 1 OR (kind BETWEEN 2 AND 12 AND kind % 2 = 0)),
                mode BIGINT NOT NULL CHECK (mode BETWEEN 0 AND 4095),
                uid BIGINT NOT NULL,
                gid BIGINT NOT NULL,
                size BIGINT NOT NULL DEFAULT 0 CHECK (size >= 0),
                nlink BIGINT NOT NULL CHECK (nlink >= 0),
                rdev BIGINT NOT NULL DEFAULT 0,
                atime_ns BIGINT NOT NULL,
                mtime_ns BIGINT NOT NULL,
                ctime_ns BIGINT NOT NULL,
                target BYTEA,
                PRIMARY KEY (volume_id, ino)
            );
            CREATE TABLE ns_object (
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                id TEXT NOT NULL CHECK (length(id) = 32),
                pool_id BIGINT NOT NULL CHECK (pool_id > 0),
                pg BIGINT NOT NULL CHECK (pg >= 0),
                size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
                state TEXT NOT NULL CHECK (state IN ('writing', 'live', 'deleting')),
                created_ms BIGINT NOT NULL,
                PRIMARY KEY (volume_id, id)
            );
            CREATE TABLE ns_dentry (
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                parent BIGINT NOT NULL,
                name BYTEA NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
                ino BIGINT NOT NULL,
                PRIMARY KEY (volume_id, parent, name),
                FOREIGN KEY (volume_id, parent) REFERENCES ns_inode (volume_id, ino) DEFERRABLE INITIALLY DEFERRED,
                FOREIGN KEY (volume_id, ino) REFERENCES ns_inode (volume_id, ino) DEFERRABLE INITIALLY DEFERRED
            );
            CREATE INDEX ns_dentry_by_ino ON ns_dentry (volume_id, ino);
            CREATE TABLE ns_slice (
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                id BIGINT NOT NULL,
                ino BIGINT NOT NULL,
                chunk BIGINT NOT NULL CHECK (chunk >= 0),
                pos BIGINT NOT NULL CHECK (pos >= 0),
                len BIGINT NOT NULL CHECK (len > 0),
                object TEXT,
                object_off BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (volume_id, id),
                FOREIGN KEY (volume_id, ino) REFERENCES ns_inode (volume_id, ino) DEFERRABLE INITIALLY DEFERRED
            );
            CREATE INDEX ns_slice_by_ino ON ns_slice (volume_id, ino);
            CREATE TABLE ns_xattr (
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                ino BIGINT NOT NULL,
                name BYTEA NOT NULL,
                value BYTEA NOT NULL,
                PRIMARY KEY (volume_id, ino, name),
                FOREIGN KEY (volume_id, ino) REFERENCES ns_inode (volume_id, ino) DEFERRABLE INITIALLY DEFERRED
            );
            CREATE TABLE ns_settling_object (
                volume_id TEXT NOT NULL REFERENCES volume(id) ON DELETE CASCADE,
                id TEXT NOT NULL,
                PRIMARY KEY (volume_id, id),
                FOREIGN KEY (volume_id, id) REFERENCES ns_object (volume_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
            );
            """),
    ]

    /// Applies the migrations not applied yet, each in the transaction that records it, under
    /// a session-level advisory lock taken before the transaction (so that its snapshot sees
    /// what another daemon's migration committed just before).
    static func migrate(_ pool: PostgresPool) throws {
        try pool.read { session in
            try session.query("SELECT pg_advisory_lock(7011955301)")
            defer { _ = try? session.query("SELECT pg_advisory_unlock(7011955301)") }
            try session.query("CREATE TABLE IF NOT EXISTS berth_migration (name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)")
            let applied = Set(try session.query("SELECT name FROM berth_migration").map { try $0.decode(String.self) })
            for (name, sql) in all where !applied.contains(name) {
                try session.query("BEGIN")
                do {
                    // One statement per call: the extended query protocol takes one.
                    for statement in sql.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                        try session.query(statement)
                    }
                    try session.query("INSERT INTO berth_migration (name, applied_ms) VALUES ($1, $2)",
                                      [name, Int64((Date().timeIntervalSince1970 * 1000).rounded())])
                    try session.query("COMMIT")
                } catch {
                    _ = try? session.query("ROLLBACK")
                    throw error
                }
            }
        }
    }
}
