import Foundation
import Metadata
import NIOCore
import PostgresNIO

/// Volumes' namespaces and their leases on PostgreSQL (`NamespaceStore` has the rules):
/// `namespace_head` holds each volume's lease and version, `ns_*` its rows (schema in
/// `PostgresMigrations` "v2-namespaces"). A shipment is one SERIALIZABLE transaction: the
/// lease row locked and its generation checked, then one statement per table and kind of
/// change (`unnest` of arrays, whatever the number of rows), then the version bumped.
public final class PostgresNamespaceStore: NamespaceStore {
    let pool: PostgresPool

    init(pool: PostgresPool) {
        self.pool = pool
    }

    /// A store of its own connections, without the controller lock: what a node that
    /// mounts volumes needs (the cluster's schema is the controller's to migrate; this
    /// migrates too, under the same lock, so that either may start first).
    public convenience init(settings: MetadataLocation.PostgresSettings) throws {
        let pool = try PostgresPool(settings: settings)
        try PostgresMigrations.migrate(pool)
        self.init(pool: pool)
    }

    public func acquireLease(volumeID: String, holder: String, ttl: Duration) throws -> NamespaceLease {
        try pool.write { s in
            let rows = try s.query("""
                SELECT holder, generation, EXTRACT(EPOCH FROM (expires_at - now()))::FLOAT8, version, shipped_generation
                FROM namespace_head WHERE volume_id = $1 FOR UPDATE
                """, [volumeID])
            guard let row = rows.first else {
                let inserted = try s.query("""
                    INSERT INTO namespace_head (volume_id, holder, generation, expires_at) VALUES ($1, $2, 1, now() + make_interval(secs => $3))
                    """, [volumeID, holder, ttl.seconds])
                _ = inserted
                return NamespaceLease(volumeID: volumeID, holder: holder, generation: 1, version: 0, shippedGeneration: 0)
            }
            let (current, generation, remaining, version, shipped) = try row.decode((String?, Int64, Double, Int64, Int64).self)
            if let current, current != holder, remaining > 0 {
                throw NamespaceLeaseHeld(volumeID: volumeID, holder: current, remainingSeconds: remaining)
            }
            try s.query("""
                UPDATE namespace_head SET holder = $2, generation = $3, expires_at = now() + make_interval(secs => $4) WHERE volume_id = $1
                """, [volumeID, holder, generation + 1, ttl.seconds])
            return NamespaceLease(volumeID: volumeID, holder: holder, generation: generation + 1, version: version, shippedGeneration: shipped)
        }
    }

    public func renewLease(_ lease: NamespaceLease, ttl: Duration) throws {
        let renewed = try pool.read { s in
            try s.execute("""
                UPDATE namespace_head SET expires_at = now() + make_interval(secs => $4)
                WHERE volume_id = $1 AND generation = $2 AND holder = $3
                """) { b in try b.append(lease.volumeID); try b.append(lease.generation); try b.append(lease.holder); try b.append(ttl.seconds) }
        }
        if renewed == 0 { throw NamespaceFenced(volumeID: lease.volumeID, generation: lease.generation) }
    }

    public func releaseLease(_ lease: NamespaceLease) throws {
        _ = try pool.read { s in
            try s.execute("UPDATE namespace_head SET expires_at = now() WHERE volume_id = $1 AND generation = $2 AND holder = $3") { b in
                try b.append(lease.volumeID); try b.append(lease.generation); try b.append(lease.holder)
            }
        }
    }

    public func breakLease(volumeID: String) throws -> String? {
        try pool.write { s in
            guard let row = try s.query("SELECT holder FROM namespace_head WHERE volume_id = $1 FOR UPDATE", [volumeID]).first else { return nil }
            let holder = try row.decode(String?.self)
            try s.query("UPDATE namespace_head SET holder = NULL, generation = generation + 1, expires_at = now() WHERE volume_id = $1", [volumeID])
            return holder
        }
    }

    public func lease(volumeID: String) throws -> NamespaceLeaseState? {
        try pool.read { s in
            try s.query("""
                SELECT holder, generation, EXTRACT(EPOCH FROM (expires_at - now()))::FLOAT8, version FROM namespace_head WHERE volume_id = $1
                """, [volumeID]).first.map { row in
                let (holder, generation, remaining, version) = try row.decode((String?, Int64, Double, Int64).self)
                return NamespaceLeaseState(holder: holder, generation: generation, remainingSeconds: remaining, version: version)
            }
        }
    }

    public func ship(_ lease: NamespaceLease, _ changes: NamespaceChanges) throws -> Int64 {
        try pool.write { s in
            let current = try s.query("SELECT generation FROM namespace_head WHERE volume_id = $1 FOR UPDATE", [lease.volumeID]).first
            guard try current?.decode(Int64.self) == lease.generation else {
                throw NamespaceFenced(volumeID: lease.volumeID, generation: lease.generation)
            }
            for table in NamespaceTable.allCases.reversed() {
                if let keys = changes.deletions[table], !keys.isEmpty { try Self.delete(table, keys, lease.volumeID, s) }
            }
            for table in NamespaceTable.allCases {
                if let rows = changes.upserts[table], !rows.isEmpty { try Self.upsert(table, rows, lease.volumeID, s) }
            }
            let version = try s.query("""
                UPDATE namespace_head SET version = version + 1, shipped_generation = $2 WHERE volume_id = $1 RETURNING version
                """, [lease.volumeID, lease.generation])
            return try version.first?.decode(Int64.self) ?? 0
        }
    }

    public func load(volumeID: String) throws -> NamespaceImage {
        // One snapshot for the version and every table.
        try pool.read { s in
            try s.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { _ = try? s.query("COMMIT") }
            let version = try s.query("SELECT version FROM namespace_head WHERE volume_id = $1", [volumeID]).first?.decode(Int64.self) ?? 0
            var rows: [NamespaceTable: [NamespaceRow]] = [:]
            for table in NamespaceTable.allCases {
                let columns = table.columns
                let order = table.keyColumns.map(\.name).joined(separator: ", ")
                rows[table] = try s.query("SELECT \(columns.map(\.name).joined(separator: ", ")) FROM ns_\(table.sqliteName) WHERE volume_id = $1 ORDER BY \(order)",
                                          [volumeID]).map { row in
                    let cells = row.makeRandomAccess()
                    return try columns.indices.map { i in try Self.value(cells[i], columns[i].kind) }
                }
            }
            return NamespaceImage(version: version, rows: rows)
        }
    }

    public func objectState(volumeID: String, objectID: String) throws -> ObjectRecord.State? {
        try pool.read { s in
            try s.query("SELECT state FROM ns_object WHERE volume_id = $1 AND id = $2", [volumeID, objectID]).first
                .map { try $0.decode(String.self) }.flatMap(ObjectRecord.State.init(rawValue:))
        }
    }

    // MARK: statements

    private static func delete(_ table: NamespaceTable, _ keys: [NamespaceRow], _ volumeID: String, _ s: PostgresPool.Session) throws {
        let keyColumns = Array(table.keyColumns)
        let arrays = keyColumns.indices.map { i in ColumnArray(keyColumns[i], keys.map { $0[i] }) }
        let unnest = arrays.indices.map { "$\($0 + 2)::\(arrays[$0].sqlType)[]" }.joined(separator: ", ")
        try s.query("""
            DELETE FROM ns_\(table.sqliteName) WHERE volume_id = $1
            AND (\(keyColumns.map(\.name).joined(separator: ", "))) IN (SELECT * FROM unnest(\(unnest)))
            """) { b in
            try b.append(volumeID)
            for array in arrays { try array.bind(&b) }
        }
    }

    private static func upsert(_ table: NamespaceTable, _ rows: [NamespaceRow], _ volumeID: String, _ s: PostgresPool.Session) throws {
        let columns = table.columns
        let arrays = columns.indices.map { i in ColumnArray(columns[i], rows.map { $0[i] }) }
        var parameters: [String] = [], aliases: [String] = [], selected: [String] = []
        for (i, array) in arrays.enumerated() {
            parameters.append("$\(parameters.count + 2)::\(array.sqlType)[]")
            aliases.append("c\(i)")
            if array.column.nullable {
                parameters.append("$\(parameters.count + 2)::BOOLEAN[]")
                aliases.append("n\(i)")
                selected.append("CASE WHEN n\(i) THEN NULL ELSE c\(i) END")
            } else {
                selected.append("c\(i)")
            }
        }
        let names = columns.map(\.name)
        let keys = table.keyColumns.map(\.name)
        let updates = names.dropFirst(keys.count).map { "\($0) = excluded.\($0)" }
        let conflict = updates.isEmpty ? "DO NOTHING" : "DO UPDATE SET \(updates.joined(separator: ", "))"
        try s.query("""
            INSERT INTO ns_\(table.sqliteName) (volume_id, \(names.joined(separator: ", ")))
            SELECT $1, \(selected.joined(separator: ", ")) FROM unnest(\(parameters.joined(separator: ", "))) AS u(\(aliases.joined(separator: ", ")))
            ON CONFLICT (volume_id, \(keys.joined(separator: ", "))) \(conflict)
            """) { b in
            try b.append(volumeID)
            for array in arrays {
                try array.bind(&b)
                if array.column.nullable { try b.append(array.nulls) }
            }
        }
    }

    /// One column of many rows as a typed array (NULLs as a mask beside it: the driver's
    /// arrays hold no NULL).
    private struct ColumnArray {
        let column: NamespaceTable.Column
        var ints: [Int64] = [], blobs: [ByteBuffer] = [], texts: [String] = [], nulls: [Bool] = []

        init(_ column: NamespaceTable.Column, _ values: [NamespaceValue]) {
            self.column = column
            for value in values {
                nulls.append(value == .null)
                switch (column.kind, value) {
                case (.int, .int(let v)): ints.append(v)
                case (.blob, .blob(let v)): blobs.append(ByteBuffer(bytes: v))
                case (.text, .text(let v)): texts.append(v)
                case (.int, _): ints.append(0)
                case (.blob, .text(let v)): blobs.append(ByteBuffer(string: v))
                case (.blob, _): blobs.append(ByteBuffer())
                case (.text, _): texts.append("")
                }
            }
        }

        var sqlType: String {
            switch column.kind {
            case .int: "BIGINT"
            case .blob: "BYTEA"
            case .text: "TEXT"
            }
        }

        func bind(_ b: inout PostgresBindings) throws {
            switch column.kind {
            case .int: try b.append(ints)
            case .blob: try b.append(blobs)
            case .text: try b.append(texts)
            }
        }
    }

    private static func value(_ cell: PostgresCell, _ kind: NamespaceTable.Kind) throws -> NamespaceValue {
        switch kind {
        case .int: return try cell.decode(Int64?.self).map { .int($0) } ?? .null
        case .text: return try cell.decode(String?.self).map { .text($0) } ?? .null
        case .blob: return try cell.decode(ByteBuffer?.self).map { .blob(Data($0.readableBytesView)) } ?? .null
        }
    }
}
