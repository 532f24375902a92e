import CLinux
import Codec
import Dispatch
import Glibc
import Placement
import Synchronization

/// One device: a directory of shard files with a capacity.
///
/// Layout under `root`: `device-id` (which device this directory is), `leaf-scheme`,
/// `tmp/` (writes in flight), `shards/xx/yy/<object>.<position>` where `xxyy` is the leaf
/// number in hex: by default bits 12–27 of the object id's milliseconds, so objects written
/// within the same 4 s share a leaf and the 65,536 leaves are cycled through every 3.1 days
/// (`LeafScheme`) — a device with millions of shards keeps small directories, and a young
/// device does not make a directory for nearly every shard it takes.
///
/// Write protocol (crash-safe): write header + payload to a new unnamed file (O_TMPFILE in
/// `tmp/`), fsync it, link it at the final name (atomic: it appears whole or not at all),
/// fsync the directory. A retry whose shard is already there links it in `tmp/` and renames
/// it over the old one; where the filesystem has no O_TMPFILE, the file is created in
/// `tmp/` with a name and renamed the same way. The payload goes in
/// `writebackPiece` at a time, each piece's writeback started as soon as it is copied, so
/// the disk takes the shard while the rest is still being copied and the fsync waits for
/// the tail only. A crash leaves either no shard or the whole shard; `tmp/` leftovers are
/// removed when the device opens.
public final class ShardStore: ShardDevice {
    public let id: DeviceID
    public let root: String
    public let capacityBytes: Int
    private let used: Mutex<Int>
    private let leaves: LeafDirectories
    let leafScheme: LeafScheme
    /// Whether shards are written as unnamed files (O_TMPFILE) and linked into place: false
    /// once the filesystem refuses one, or with `BERTH_NAMED_TEMPORARIES` set in the
    /// environment (then a named file in tmp/, renamed into place). Tests set it.
    let unnamedTemporaries = Atomic<Bool>(getenv("BERTH_NAMED_TEMPORARIES") == nil)

    static let identityFile = "device-id"

    /// Opens (or with `create`, initializes) the device directory. Refuses a directory
    /// that belongs to another device. Counts the bytes already stored.
    public init(id: DeviceID, root: String, capacityBytes: Int, create: Bool = true) throws(StorageError) {
        guard capacityBytes > 0 else { throw .invalidDevice("device \(id): capacity must be positive") }
        self.id = id
        self.root = root
        self.capacityBytes = capacityBytes
        leaves = LeafDirectories()
        let identity = root + "/" + Self.identityFile
        let schemeFile = root + "/" + LeafScheme.file
        if let existing = Self.readSmallFile(identity) {
            if existing != id.rawValue {
                throw .invalidDevice("directory \(root) belongs to device \"\(existing)\", not \"\(id)\"")
            }
            if let text = Self.readSmallFile(schemeFile) {
                let name = LeafScheme.name(in: text)
                guard let scheme = LeafScheme(rawValue: name) else {
                    throw .invalidDevice("device \(id): \(schemeFile) names an unknown leaf scheme \"\(name)\"")
                }
                leafScheme = scheme
            } else {
                leafScheme = .hashed
            }
        } else {
            guard create else { throw .deviceUnavailable(id, reason: "\(root) is not an initialized device") }
            try Self.makeDirectory(root, id: id)
            try Self.makeDirectory(root + "/tmp", id: id)
            try Self.makeDirectory(root + "/shards", id: id)
            for top in 0..<256 { try Self.makeDirectory(root + "/shards/" + Self.hex2(top), id: id) }
            leafScheme = .byTime
            try Self.writeSmallFile(schemeFile, contents: leafScheme.rawValue + "\n", id: id)
            try Self.writeSmallFile(identity, contents: id.rawValue, id: id)
            try Self.syncDirectory(root, id: id)
        }
        // Writes that were in flight when the process died never got renamed: drop them.
        Self.removeContents(of: root + "/tmp")
        self.used = Mutex(Self.directoryBytes(root + "/shards"))
    }

    public var usedBytes: Int { used.withLock { $0 } }

    /// Whether the device directory is still there and answering.
    public var isReachable: Bool { access(root + "/" + Self.identityFile, R_OK) == 0 }

    // MARK: paths

    static func hex2(_ v: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[v >> 4], digits[v & 15]], as: UTF8.self)
    }

    static func name(_ object: ObjectID, _ position: Int) -> String { "\(object).\(position)" }

    func directory(for object: ObjectID) -> String { directory(leaf: leaf(object)) }

    /// Which of the 65,536 leaf directories holds the object's shards.
    func leaf(_ object: ObjectID) -> Int { leafScheme.leaf(object) }

    func directory(leaf: Int) -> String { root + "/shards/" + Self.hex2(leaf >> 8) + "/" + Self.hex2(leaf & 0xff) }

    /// Tests only: whether leaf `leaf` is known durable (`LeafDirectories`).
    func leafIsKnown(_ leaf: Int) -> Bool { leaves.isDurable(leaf) }

    func path(_ object: ObjectID, _ position: Int) -> String { directory(for: object) + "/" + Self.name(object, position) }

    // MARK: write

    /// Stores one shard durably: returns only after the data and the directory entry are
    /// on disk. Replaces an existing shard of the same object and position (a retry).
    /// `checksum`: the payload's block checksums if the caller has them, or a promise the
    /// caller is computing them into while this writes the payload (one computation for all
    /// copies of a replicated object, overlapped with the copying). Table and header go in last.
    ///
    /// `renameAfter`: the shard takes its final name only once this says true (the engine's
    /// object row is durable), so no crash leaves a shard its database does not know; false
    /// abandons the write.
    public func write(object: ObjectID, position: Int, objectSize: Int, payload: UnsafeRawBufferPointer,
                      checksum: Checksum = .compute, renameAfter: Promise<Bool>? = nil) throws(StorageError) {
        let fileBytes = ShardHeader.fileBytes(payloadLength: payload.count)
        try reserve(fileBytes)
        var committed = false
        defer { if !committed { release(fileBytes) } }
        let leaf = leaf(object)
        let directory = directory(leaf: leaf)
        // Made durable meanwhile, if it is not yet (LeafDirectories); waited for before the rename.
        let leafReady = leaves.prepare(leaf, at: directory)
        defer { _ = leafReady?.value() }  // never left running past the call
        let tmp = root + "/tmp/" + Self.name(object, position) + "." + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        // An unnamed file where the filesystem has them (O_TMPFILE), else a named one in tmp/.
        let tryUnnamed = unnamedTemporaries.load(ordering: .relaxed)
        let unnamed = tryUnnamed ? berth_open_tmpfile(root + "/tmp") : -1
        if tryUnnamed && unnamed < 0 {
            let refused = errno
            if refused == EOPNOTSUPP || refused == EISDIR || refused == EINVAL { unnamedTemporaries.store(false, ordering: .relaxed) }
        }
        let fd = unnamed >= 0 ? unnamed : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error("create \(tmp)") }
        defer { close(fd) }
        // Whether `tmp` names the file, and must go if the write does not complete.
        var tmpNamed = unnamed < 0
        defer { if tmpNamed { unlink(tmp) } }
        do {
            let blocks = ShardHeader.blockCount(payloadLength: payload.count)
            // Checksums to compute are computed piece by piece as the payload goes out, while
            // the disk takes the pieces already written.
            var computed: [UInt32] = []
            if case .compute = checksum { computed = [UInt32](repeating: 0, count: blocks) }
            try computed.withUnsafeMutableBufferPointer { table throws(StorageError) in
                try writeStreaming(fd, payload, at: ShardHeader.size + 4 * blocks, what: tmp, checksums: table)
            }
            let table: [UInt32]
            switch checksum {
            case .compute: table = computed
            case .known(let value): table = value
            case .promised(let promise): table = promise.value()
            }
            precondition(table.count == blocks, "block table does not match the payload")
            let little = table.map(\.littleEndian)
            var front = ShardHeader(payloadLength: UInt64(payload.count), checksum: little.withUnsafeBytes { CRC32C.checksum($0) },
                                    position: UInt32(position), objectSize: UInt64(objectSize), object: object).encoded()
            little.withUnsafeBytes { front += $0 }
            // withUnsafeBytes rethrows untyped errors: carry ours out as a value.
            let headerError = front.withUnsafeBytes { b -> StorageError? in
                do throws(StorageError) { try writeAll(fd, b, at: 0, what: tmp); return nil } catch { return error }
            }
            if let headerError { throw headerError }
            if fsync(fd) != 0 { throw error("fsync \(tmp)") }
        }
        if let leafReady, let failure = leafReady.value() { throw error(failure) }
        if let renameAfter, !renameAfter.value() {
            throw .io(device: id, operation: "write of \(Self.name(object, position)), abandoned: its object could not be recorded", errno: ECANCELED)
        }
        let final = directory + "/" + Self.name(object, position)
        var old = stat()
        let replaced = stat(final, &old) == 0 ? Int(old.st_size) : 0
        // An unnamed file takes its name in one step; a named one, or an unnamed one whose
        // name is taken (a retry of this shard: named in tmp/ first), is renamed over it.
        func takeName() throws(StorageError) {
            if unnamed < 0 || berth_link_tmpfile(fd, final) != 0 {
                if unnamed >= 0 && !tmpNamed {
                    guard errno == EEXIST else { throw error("link to \(final)") }
                    guard berth_link_tmpfile(fd, tmp) == 0 else { throw error("link to \(tmp)") }
                    tmpNamed = true
                }
                guard rename(tmp, final) == 0 else { throw error("rename to \(final)") }
                tmpNamed = false
            }
        }
        do {
            try takeName()
        } catch {
            // A leaf this process made that is gone since (the device directory emptied and
            // initialized anew under a running process, as a replaced disk is): made again, once.
            guard case .io(_, _, ENOENT) = error, isReachable else { throw error }
            leaves.forget(leaf)
            if let failure = leaves.prepare(leaf, at: directory)?.value() { throw self.error(failure) }
            try takeName()
        }
        if let failure = Self.syncDirectory(directory) { throw error(failure) }
        committed = true
        if replaced > 0 { release(replaced) }
    }

    /// How `write` gets the payload's block checksums (`CRC32C.blockChecksums` with
    /// `ShardHeader.blockSize`).
    public enum Checksum: Sendable {
        case compute
        case known([UInt32])
        case promised(Promise<[UInt32]>)
    }

    private func reserve(_ bytes: Int) throws(StorageError) {
        let free: Int? = used.withLock { value in
            if value + bytes > capacityBytes { return max(0, capacityBytes - value) }
            value += bytes
            return nil
        }
        if let free { throw .noSpace(device: id, neededBytes: bytes, freeBytes: free) }
    }

    private func release(_ bytes: Int) { used.withLock { $0 -= bytes } }

    /// How much of a payload is copied before its writeback is started (a multiple of
    /// `ShardHeader.blockSize`: each piece's block checksums are whole blocks).
    static let writebackPiece = 1 << 20

    /// `writeAll` in `writebackPiece`s, starting each piece's writeback once it is copied
    /// (`sync_file_range` WRITE: no waiting, no durability — the fsync after is what makes it
    /// durable and reports errors). A plain write leaves all of it to the fsync, which then
    /// waits for the whole transfer after the whole copy. Unless `checksums` is empty (the
    /// caller has them), each piece's block checksums go into it (block `i` of `bytes` at
    /// index `i`) once its writeback is under way.
    private func writeStreaming(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at position: Int, what: String,
                                checksums: UnsafeMutableBufferPointer<UInt32>) throws(StorageError) {
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.writebackPiece, bytes.count - offset)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
            try writeAll(fd, piece, at: position + offset, what: what)
            _ = berth_start_writeback(fd, Int64(position + offset), Int64(n))
            if !checksums.isEmpty {
                CRC32C.blockChecksums(piece, blockSize: ShardHeader.blockSize,
                                      into: UnsafeMutableBufferPointer(rebasing: checksums[(offset / ShardHeader.blockSize)...]))
            }
            offset += n
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at position: Int, what: String) throws(StorageError) {
        var offset = 0
        while offset < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + offset, bytes.count - offset, off_t(position + offset))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw .noSpace(device: id, neededBytes: bytes.count - offset, freeBytes: 0) }
                throw error("write \(what)")
            }
            offset += n
        }
    }

    private func error(_ operation: String) -> StorageError { error(Failure(operation: operation, errno: errno)) }

    /// A failed call as the error callers see: a device whose directory is gone is
    /// unavailable, a full one has no space, anything else is an I/O error.
    private func error(_ failure: Failure) -> StorageError {
        let (operation, e) = (failure.operation, failure.errno)
        if e == ENOENT && !isReachable { return .deviceUnavailable(id, reason: "\(root) is gone") }
        if e == ENOSPC || e == EDQUOT { return .noSpace(device: id, neededBytes: 0, freeBytes: 0) }
        return .io(device: id, operation: operation, errno: e)
    }

    // MARK: read

    /// A shard read back and verified.
    public struct Shard: Sendable {
        public var payload: [UInt8]
        public var objectSize: Int

        public init(payload: [UInt8], objectSize: Int) {
            self.payload = payload
            self.objectSize = objectSize
        }
    }

    /// Reads and verifies one shard: header checksum, block table, every block (v1: the
    /// payload checksum), length, and that the header names this object and position.
    public func read(object: ObjectID, position: Int) throws(StorageError) -> Shard {
        let opened = try openShard(object, position)
        defer { close(opened.fd) }
        let header = opened.header
        func corrupt(_ reason: String) -> StorageError { .corruptShard(device: id, shard: Self.name(object, position), reason: reason) }
        var info = stat()
        guard fstat(opened.fd, &info) == 0 else { throw error("stat \(path(object, position))") }
        let size = Int(info.st_size)
        guard UInt64(size - header.payloadOffset) == header.payloadLength else {
            throw corrupt("payload is \(size - header.payloadOffset) bytes, header says \(header.payloadLength)")
        }
        return Shard(payload: try readBlocks(opened, 0..<Int(header.payloadLength), object, position),
                     objectSize: Int(header.objectSize))
    }

    /// Reads and verifies bytes `range` of one shard's payload: only the blocks covering
    /// it are read and checked (a v1 shard is read and checked whole). Also returns the
    /// object's size from the header.
    public func read(object: ObjectID, position: Int, range: Range<Int>) throws(StorageError) -> (bytes: [UInt8], objectSize: Int) {
        let opened = try openShard(object, position)
        defer { close(opened.fd) }
        guard range.lowerBound >= 0, range.upperBound <= Int(opened.header.payloadLength) else {
            throw .corruptShard(device: id, shard: Self.name(object, position),
                                reason: "range \(range) is outside the \(opened.header.payloadLength)-byte payload")
        }
        if !opened.header.hasBlockTable {
            let whole = try readBlocks(opened, 0..<Int(opened.header.payloadLength), object, position)
            return (Array(whole[range]), Int(opened.header.objectSize))
        }
        return (try readBlocks(opened, range, object, position), Int(opened.header.objectSize))
    }

    /// An open shard file with its header and block table read and verified.
    private struct OpenShard {
        var fd: Int32
        var header: ShardHeader
        var table: [UInt32]
    }

    private func openShard(_ object: ObjectID, _ position: Int) throws(StorageError) -> OpenShard {
        let file = path(object, position)
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT {
                if !isReachable { throw .deviceUnavailable(id, reason: "\(root) is gone") }
                throw .shardNotFound(device: id, shard: Self.name(object, position))
            }
            throw error("open \(file)")
        }
        var ok = false
        defer { if !ok { close(fd) } }
        func corrupt(_ reason: String) -> StorageError { .corruptShard(device: id, shard: Self.name(object, position), reason: reason) }
        // The header and, in the same read, the table of a payload up to 4 MiB.
        var got = 0
        var front = [UInt8](unsafeUninitializedCapacity: ShardHeader.size + 4096) { buffer, count in
            got = Self.readFully(fd, UnsafeMutableRawBufferPointer(buffer), at: 0)
            count = max(0, got)
        }
        guard got >= 0 else { throw error("read \(file)") }
        let header: ShardHeader
        switch front.withUnsafeBytes({ ShardHeader.decode(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }) {
        case .success(let h): header = h
        case .failure(let e): throw corrupt(e.reason)
        }
        guard header.object == object, header.position == UInt32(position) else {
            throw corrupt("header names \(header.object).\(header.position)")
        }
        var table: [UInt32] = []
        if header.hasBlockTable {
            let tableBytes = header.tableBytes
            if ShardHeader.size + tableBytes > got {
                front = [UInt8](repeating: 0, count: ShardHeader.size + tableBytes)
                let n = front.withUnsafeMutableBytes { Self.readFully(fd, $0, at: 0) }
                guard n >= 0 else { throw error("read \(file)") }
                guard n == front.count else { throw corrupt("file ends inside the block table") }
            }
            let tableCRC: UInt32
            (table, tableCRC) = front.withUnsafeBytes { b in
                let bytes = UnsafeRawBufferPointer(rebasing: b[ShardHeader.size..<(ShardHeader.size + tableBytes)])
                // Little-endian on disk and in memory (x86-64, arm64): one copy, where a
                // load per entry cost 10 k instructions for a 4 MiB payload's table.
                let entries = [UInt32](unsafeUninitializedCapacity: tableBytes / 4) { out, count in
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: bytes)
                    count = tableBytes / 4
                    for i in 0..<count { out[i] = UInt32(littleEndian: out[i]) }
                }
                return (entries, CRC32C.checksum(bytes))
            }
            guard tableCRC == header.checksum else { throw corrupt("block table checksum mismatch") }
        }
        ok = true
        return OpenShard(fd: fd, header: header, table: table)
    }

    /// Reads the payload blocks covering `range` and verifies them; returns exactly `range`.
    /// v1 shards are read whole (`range` must then be the whole payload).
    private func readBlocks(_ shard: OpenShard, _ range: Range<Int>, _ object: ObjectID, _ position: Int) throws(StorageError) -> [UInt8] {
        func corrupt(_ reason: String) -> StorageError { .corruptShard(device: id, shard: Self.name(object, position), reason: reason) }
        let header = shard.header
        let length = Int(header.payloadLength)
        let block = ShardHeader.blockSize
        let span = header.hasBlockTable
            ? (range.lowerBound / block * block)..<min(length, (range.upperBound + block - 1) / block * block)
            : 0..<length
        if range.isEmpty { return [] }
        var readError: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: span.count) { buffer, count in
            let n = Self.readFully(shard.fd, UnsafeMutableRawBufferPointer(buffer), at: header.payloadOffset + span.lowerBound)
            if n < 0 { readError = errno }
            count = max(0, n)
        }
        if readError != 0 { errno = readError; throw error("read \(path(object, position))") }
        guard bytes.count == span.count else { throw corrupt("payload is shorter than the header says (\(header.payloadLength) bytes)") }
        // withUnsafeBytes rethrows untyped errors: carry the reason out as a value.
        let mismatch = bytes.withUnsafeBytes { b -> String? in
            if !header.hasBlockTable { return CRC32C.checksum(b) == header.checksum ? nil : "payload checksum mismatch" }
            var start = 0
            while start < b.count {
                let index = (span.lowerBound + start) / block
                let end = min(b.count, start + block)
                if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[start..<end])) != shard.table[index] {
                    return "payload checksum mismatch in block \(index)"
                }
                start = end
            }
            return nil
        }
        if let mismatch { throw corrupt(mismatch) }
        if span == range { return bytes }
        return Array(bytes[(range.lowerBound - span.lowerBound)..<(range.upperBound - span.lowerBound)])
    }

    /// Reads until `buffer` is full or end of file; the bytes read, or -1 on error (errno set).
    private static func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 { if errno == EINTR { continue }; return -1 }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func hasShard(object: ObjectID, position: Int) throws(StorageError) -> Bool {
        do {
            let opened = try openShard(object, position)
            close(opened.fd)
            return true
        } catch {
            if case .shardNotFound = error { return false }
            // A corrupt header is a shard to write again.
            if case .corruptShard = error { return false }
            throw error
        }
    }

    public func contains(object: ObjectID, position: Int) -> Bool {
        access(path(object, position), F_OK) == 0
    }

    /// Removes shards (those not there count as removed), then makes the removals durable
    /// with one fsync per leaf directory they were in — after all the unlinks, so one
    /// journal commit covers most of them, where a sync after each shard paid one per
    /// shard. Returns what failed; the others are removed.
    public func delete(_ shards: [(object: ObjectID, position: Int)]) -> [StorageError] {
        var failures: [StorageError] = []
        var directories: Set<Int> = []
        for (object, position) in shards {
            let file = path(object, position)
            var info = stat()
            guard stat(file, &info) == 0 else {
                if errno != ENOENT { failures.append(error("stat \(file)")) } else if !isReachable {
                    failures.append(.deviceUnavailable(id, reason: "\(root) is gone"))
                }
                continue
            }
            guard unlink(file) == 0 else {
                if errno != ENOENT { failures.append(error("unlink \(file)")) }
                continue
            }
            release(Int(info.st_size))
            directories.insert(leaf(object))
        }
        for leaf in directories.sorted() {
            if let failure = Self.syncDirectory(directory(leaf: leaf)) { failures.append(error(failure)) }
        }
        return failures
    }

    /// Every shard on the device, for scrubbing and garbage collection.
    public func allShards() throws(StorageError) -> [(object: ObjectID, position: Int)] {
        guard isReachable else { throw .deviceUnavailable(id, reason: "\(root) is gone") }
        var result: [(ObjectID, Int)] = []
        for top in Self.entries(root + "/shards") {
            for leaf in Self.entries(root + "/shards/" + top) {
                for name in Self.entries(root + "/shards/" + top + "/" + leaf) {
                    let parts = name.split(separator: ".")
                    if parts.count == 2, let object = ObjectID(String(parts[0])), let position = Int(parts[1]) {
                        result.append((object, position))
                    }
                }
            }
        }
        return result
    }

    // MARK: small file-system helpers

    static func entries(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func directoryBytes(_ directory: String) -> Int {
        var total = 0
        for name in entries(directory) {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR { total += directoryBytes(path) } else { total += Int(info.st_size) }
        }
        return total
    }

    static func removeContents(of directory: String) {
        for name in entries(directory) { unlink(directory + "/" + name) }
    }

    static func makeDirectory(_ path: String, id: DeviceID) throws(StorageError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .io(device: id, operation: "mkdir \(path)", errno: errno) }
    }

    /// A system call that failed: what was attempted, and its errno.
    struct Failure: Sendable {
        var operation: String
        var errno: Int32
    }

    /// Makes the directory's entries durable; what failed, or nil.
    static func syncDirectory(_ path: String) -> Failure? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return Failure(operation: "open directory \(path)", errno: errno) }
        defer { close(fd) }
        return fsync(fd) == 0 ? nil : Failure(operation: "fsync directory \(path)", errno: errno)
    }

    static func syncDirectory(_ path: String, id: DeviceID) throws(StorageError) {
        if let failure = syncDirectory(path) { throw .io(device: id, operation: failure.operation, errno: failure.errno) }
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(fd, &buffer, buffer.count)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    static func writeSmallFile(_ path: String, contents: String, id: DeviceID) throws(StorageError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(device: id, operation: "create \(path)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw .io(device: id, operation: "write \(path)", errno: errno)
        }
    }
}
