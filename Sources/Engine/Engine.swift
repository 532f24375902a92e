import Codec
import Foundation
import Metadata
import MetadataPostgres
import Placement
import Storage
import StorageClasses
import Synchronization

/// The storage engine of one node: storage classes and their pools, devices and the
/// cluster map's epochs, volumes and their objects, the mover that executes movement,
/// and capacity. Metadata lives in SQLite under the state directory; data in shard stores.
///
/// Thread-safe. Admin changes (classes, devices, epochs, volumes) are serialized; object
/// reads and writes run concurrently with them and with the mover.
public final class Engine: Sendable {
    public let configuration: EngineConfiguration
    let database: any ClusterStore
    public let objects: ObjectStore
    let generator: ObjectIDGenerator
    let throttle: Throttle
    /// Shard bytes written by recovery of degraded writes (the delta resyncs) since start.
    let recoveredBytes = Atomic<Int64>(0)
    let adminLock = Mutex<Void>(())
    let moverLock = Mutex<Void>(())
    let state: Mutex<State>
    let volumeDatabases = Mutex<[String: VolumeDatabase]>([:])
    /// When the mover last swept for volumes a dead node left in use (`reconcileAbandonedVolumes`).
    let abandonedSweep = Mutex<ContinuousClock.Instant?>(nil)
    /// Class names of available volumes met so far (`volumeAndClass`).
    let volumeClassNames = Mutex<[String: String]>([:])
    /// Held per volume while its database is opened or closed: two connections opening a
    /// new file at once would both run its migrations (and one fail with "table already
    /// exists"); an open waiting for another node's lease holds up only that volume.
    let volumeOpening = StripedLocks()
    /// Per volume: class, provisioned bytes and usage, with totals per class. Only an open
    /// (mounted) volume's usage changes, so closed volumes' values are kept here instead of
    /// opening every volume's database for each capacity question.
    let usageTable = VolumeUsageTable()
    /// Silent hosts' devices and the states the health check set (`checkHealth`).
    let health = HealthTracker()
    let volumeCommits: GroupCommit
    /// Objects by placement group, across volumes (`pg_object`), and its pending changes.
    let index: ObjectIndexJournal
    /// Volumes admitted but not yet committed: their names and, per class, their bytes.
    let reservations = Mutex<(names: Set<String>, bytes: [String: Int64])>(([], [:]))
    /// Per volume or snapshot: held while its objects are let go (`purgeObjects`, deletion)
    /// or its database is copied (a snapshot or clone of it), so a copy never takes an
    /// object whose shards are being deleted (docs/snapshots.md).
    let shareLocks = StripedLocks()
    /// Volumes and snapshots named in `object_holder`: only their let-gos ask the cluster
    /// database whether another namespace still holds an object.
    let sharingHolders: Mutex<Set<String>>
    /// Devices in maintenance: since when and until when (wall-clock ms; nil: until stopped).
    let maintenanceWindows: Mutex<[DeviceID: (startedMs: Int64, untilMs: Int64?)]>
    /// Per epoch and pool: shards per device of the current placement (for admission).
    let shardCounts = Mutex<(epoch: UInt64, counts: [UInt32: [DeviceID: Int]])>((0, [:]))

    typealias VolumeUsage = VolumeUsageTable.Usage

    struct ClassEntry: Sendable {
        var storageClass: StorageClass
        var poolID: UInt32
        var codec: PoolCodec
    }

    struct State: Sendable {
        var map: ClusterMap
        var placer: Placer
        var classes: [String: ClassEntry]
        /// Per pool: where each PG's positions' shards are (`shard_location`).
        var locations: [UInt32: [[DeviceID]]]
        /// Per pool: the current map's placement, per PG.
        var targets: [UInt32: [[DeviceID]]]

        func entry(pool: UInt32) -> ClassEntry? { classes.values.first { $0.poolID == pool } }
    }

    var devicesDirectory: String { configuration.stateDirectory + "/devices" }
    var volumesDirectory: String { configuration.stateDirectory + "/volumes" }

    /// Opens the engine on its state directory (created if missing), then finishes what a
    /// crash interrupted: objects still 'writing' are collected (or, if `writeObject` may
    /// have acknowledged them, kept when they read back), deletions completed, and
    /// shards left behind by finished moves removed. Movement itself resumes with `move`.
    public init(configuration: EngineConfiguration) throws(EngineError) {
        self.configuration = configuration
        let fm = FileManager.default
        do {
            for dir in [configuration.stateDirectory, configuration.stateDirectory + "/devices", configuration.stateDirectory + "/volumes"] {
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
        } catch {
            throw .io("cannot create the state directory \(configuration.stateDirectory): \(error.localizedDescription)")
        }
        if configuration.role == .node {
            guard case .postgres? = configuration.metadata else {
                throw .invalidArgument("a node role mounts volumes of a cluster whose state is shared: it needs --metadata postgres://…")
            }
        }
        let database: any ClusterStore = try EngineError.wrap {
            switch configuration.metadata {
            case .postgres(let settings)?:
                try PostgresClusterStore(settings: settings, controller: configuration.role == .all && configuration.controllerLock,
                                         standby: configuration.leadership?.standby, lost: configuration.leadership?.lost)
            case .sqlite(let path)?: try ClusterDatabase(path: path)
            case nil: try ClusterDatabase(path: configuration.stateDirectory + "/cluster.sqlite")
            }
        }
        self.database = database
        volumeCommits = GroupCommit(database: database)
        index = ObjectIndexJournal(database: database, window: .milliseconds(configuration.objectIndexWindowMs))
        generator = ObjectIDGenerator(node: configuration.nodeID)
        sharingHolders = Mutex(try EngineError.wrap { try database.sharingHolders() })
        let windows = try EngineError.wrap { try database.maintenance() }
        maintenanceWindows = Mutex(Self.maintenanceWindows(windows))

        let map = try EngineError.wrap { try database.latestMap() } ?? ClusterMap()
        let placer = try EngineError.wrap { try Placer(map: map) }
        let (classes, locations) = try Self.loadClasses(database)
        var stores: [any ShardDevice] = []
        for record in try EngineError.wrap({ try database.devices() }) {
            if let store = try Self.openDevice(record, connector: configuration.connector) { stores.append(store) }
        }
        let targets = try Self.targets(of: map, placer: placer)
        let initial = State(map: map, placer: placer, classes: classes, locations: locations, targets: targets)
        state = Mutex(initial)
        objects = ObjectStore(layout: Self.layout(initial), devices: stores, codecs: classes.values.map(\.codec))
        throttle = Throttle(bytesPerSecond: configuration.moverBytesPerSecond, adaptive: configuration.adaptiveMoverBudget,
                            latency: objects.clientLatency)
        // Finishing what a stop interrupted is the controller's; a node reconciles the
        // volumes it mounts when it takes their leases.
        if configuration.role == .all { try recoverAfterRestart() }
    }

    /// Devices in maintenance, by id, as the store lists them.
    static func maintenanceWindows(_ windows: [(device: String, startedMs: Int64, untilMs: Int64?)]) -> [DeviceID: (startedMs: Int64, untilMs: Int64?)] {
        Dictionary(windows.map { (DeviceID($0.device), ($0.startedMs, $0.untilMs)) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every class, and where each of its pool's PGs' shards are.
    static func loadClasses(_ database: any ClusterStore) throws(EngineError) -> (classes: [String: ClassEntry], locations: [UInt32: [[DeviceID]]]) {
        var classes: [String: ClassEntry] = [:]
        var locations: [UInt32: [[DeviceID]]] = [:]
        for record in try EngineError.wrap({ try database.classes() }) {
            let storageClass = try EngineError.wrap { try JSONDecoder().decode(StorageClass.self, from: Data(record.definition.utf8)) }
            let poolID = UInt32(record.poolID)
            let codec = try EngineError.wrap { try PoolCodec(poolID: poolID, storageClass: storageClass) }
            classes[record.name] = ClassEntry(storageClass: storageClass, poolID: poolID, codec: codec)
            locations[poolID] = try EngineError.wrap { try database.locations(poolID: poolID) }
        }
        return (classes, locations)
    }

    /// The device a record names: its agent's (unreachable until the agent answers: reads
    /// degrade meanwhile), or a directory of this machine (nil if it is gone: it stays in
    /// the map, reads degrade, until failed).
    static func openDevice(_ record: DeviceRecord, connector: (any DeviceConnector)?) throws(EngineError) -> (any ShardDevice)? {
        if let agent = record.agent {
            guard let connector else {
                throw .invalidArgument("device \(record.id) is served by the node agent at \(agent); "
                    + "this daemon needs the cluster's TLS directory (--tls-dir) to reach it")
            }
            return try EngineError.wrap { try connector.device(id: DeviceID(record.id), host: record.host, address: agent,
                                                               capacityBytes: Int(record.capacityBytes), verify: false) }
        }
        return try? ShardStore(id: DeviceID(record.id), root: record.path, capacityBytes: Int(record.capacityBytes), create: false)
    }

    // MARK: layout

    static func targets(of map: ClusterMap, placer: Placer) throws(EngineError) -> [UInt32: [[DeviceID]]] {
        var result: [UInt32: [[DeviceID]]] = [:]
        for pool in map.pools {
            let table = try EngineError.wrap { try placer.table(pool: pool.id) }
            result[pool.id] = (0..<table.pgCount).map { Array(table[$0]) }
        }
        return result
    }

    static func layout(_ s: State) -> ObjectStore.Layout {
        var moving: [UInt32: [Int: [DeviceID]]] = [:]
        for (pool, locations) in s.locations {
            guard let targets = s.targets[pool] else { continue }
            for (pg, devices) in locations.enumerated() where pg < targets.count && devices != targets[pg] {
                moving[pool, default: [:]][pg] = devices
            }
        }
        return ObjectStore.Layout(current: s.placer, locations: moving)
    }

    /// Installs a new state and the object store's matching layout.
    /// The layout is set under the state lock, so whoever reads an epoch from the state
    /// finds puts already placing by it (what `move` relies on when it waits for older puts).
    ///
    /// Shard locations of pools that stay are the mover's, which switches them without the
    /// admin lock: the installed state keeps the live ones, not those of the snapshot the
    /// caller started from (a switch made meanwhile would otherwise be undone in memory
    /// while the database has it, and the next move would start from a device it left).
    func install(_ s: State) {
        state.withLock { st in
            var s = s
            for pool in s.locations.keys { if let live = st.locations[pool] { s.locations[pool] = live } }
            st = s
            for entry in s.classes.values { objects.setCodec(entry.codec) }
            objects.setLayout(Self.layout(s))
        }
    }

    /// The map this node is serving.
    public var map: ClusterMap { state.withLock { $0.map } }

    // MARK: restart

    /// Finishes what a stop interrupted, reading only the volumes it may concern: those
    /// open for writing when it came (`volume_in_use`) and those being deleted. Every other
    /// volume is known from the cluster database alone (its usage as last measured).
    private func recoverAfterRestart() throws(EngineError) {
        let volumes = try EngineError.wrap { try database.volumes() }
        let known = try EngineError.wrap { try database.usages() }
        let classOf = Dictionary(volumes.map { ($0.id, $0.className) }, uniquingKeysWith: { a, _ in a })
        for volume in volumes where volume.kind == .volume {
            usageTable.setCapacity(volume.id, className: volume.className, bytes: volume.capacityBytes)
        }
        let snapshots = Set(volumes.filter { $0.kind == .snapshot }.map(\.id))
        for usage in known where !snapshots.contains(usage.volumeID) {
            guard let className = classOf[usage.volumeID] else { continue }
            usageTable.setUsage(usage.volumeID, VolumeUsage(className: className, storedBytes: usage.storedBytes, liveBytes: usage.liveBytes))
        }
        // Clones still copying their data may hold objects being swapped: as if open.
        let inUse = Set(try EngineError.wrap { try database.volumesInUse() + database.cloneCopies() })
        for volume in volumes where volume.state != .available || inUse.contains(volume.id) {
            if volume.state == .creating {
                try abandonCopy(volume)
            } else if volume.state == .deleting {
                try deleteVolumeData(volume)
            } else if database.namespaceStore == nil {
                try reconcile(volume, try temporaryVolumeDatabase(volume.id))
            } else {
                // With namespaces in the cluster's store, under the volume's lease, from the
                // store's copy. A volume another node mounts now is that node's to reconcile
                // (when it takes the lease again after its own restart).
                do {
                    try withLeasedVolumeDatabase(volume.id, wait: .zero) { (vdb) throws(EngineError) in try reconcile(volume, vdb) }
                } catch .busy {
                    continue
                }
            }
        }
        try processCleanups()
    }

    /// A volume that was open when the engine stopped: objects caught mid-write are settled
    /// or collected, then its index entries and usage are made exact from its database.
    /// `open`: the volume stays open (mounted here): it stays in use.
    func reconcile(_ volume: VolumeRecord, _ vdb: VolumeDatabase, open: Bool = false) throws(EngineError) {
        guard let entry = state.withLock({ $0.classes[volume.className] }) else { return }
        let undecided = try settleInterruptedWrites(vdb)
        let interrupted = try EngineError.wrap { try vdb.objects(state: .writing) + vdb.objects(state: .deleting) }
        // Never acknowledged ('writing') or being deleted: shards (unless another namespace
        // holds the object), then rows.
        try letGo(interrupted.filter { !undecided.contains($0.id) }, of: volume.id, vdb)
        // Each by its own pool's codec (a clone may still hold another class's objects).
        let rows = try EngineError.wrap { try vdb.objects() }.map { row in
            Self.indexed(row, volume: volume.id, UInt32(row.poolID) == entry.poolID ? entry : state.withLock { $0.entry(pool: UInt32(row.poolID)) } ?? entry)
        }
        let usage = try Self.measure(vdb, entry)
        usageTable.setUsage(volume.id, usage)
        // Undecided objects keep the volume in use, so the next start looks at them again.
        try EngineError.wrap {
            try database.replaceIndex(volumeID: volume.id, objects: rows,
                                      usage: VolumeUsageRecord(volumeID: volume.id, storedBytes: usage.storedBytes, liveBytes: usage.liveBytes),
                                      keepInUse: open || !undecided.isEmpty)
        }
    }

    /// The index entry of an object of `volume`.
    static func indexed(_ object: ObjectRecord, volume: String, _ entry: ClassEntry) -> IndexedObject {
        IndexedObject(id: object.id, poolID: object.poolID, pg: object.pg, volumeID: volume, sizeBytes: object.sizeBytes,
                      shardBytes: Int64(ShardHeader.fileBytes(payloadLength: entry.codec.shardPayloadBytes(objectSize: Int(object.sizeBytes)))))
    }

    /// Settles the objects a crash caught between their durable row and being made live:
    /// one that reads back is kept (its write may have been acknowledged); one that does
    /// not, with every device it was placed on reachable, never was and is collected. The
    /// rest (a device it needs is down) stay for the next start; their ids are returned.
    private func settleInterruptedWrites(_ vdb: VolumeDatabase) throws(EngineError) -> Set<String> {
        var undecided: Set<String> = []
        for object in try EngineError.wrap({ try vdb.settlingObjects() }) {
            let pool = UInt32(object.poolID)
            guard let id = ObjectID(object.id) else { continue }
            if (try? objects.get(pool: pool, object: id)) != nil {
                try EngineError.wrap { try vdb.settle(object: object.id) }
                continue
            }
            let placed = (try? objects.placement(pool: pool, object: id)).map { $0.current + ($0.previous ?? []) } ?? []
            if placed.isEmpty || !placed.allSatisfy({ objects.device($0)?.isReachable == true }) {
                undecided.insert(object.id)
            }
        }
        return undecided
    }

    func volumeDatabase(_ id: String) throws(EngineError) -> VolumeDatabase {
        try openVolumeDatabase(id, .mounted)
    }

    /// The volume's database: the open one if the volume is in use, else opened for this
    /// call only (so that thousands of idle volumes do not hold thousands of files open).
    /// With namespaces in the cluster's store, a volume not mounted here may be stale or
    /// empty here: for reading figures only (`withLeasedVolumeDatabase` to change it).
    func temporaryVolumeDatabase(_ id: String) throws(EngineError) -> VolumeDatabase {
        try openVolumeDatabase(id, .temporary)
    }

    /// Runs `body` with the volume's database for work that changes it while no mount holds
    /// it here (deleting it, finishing a clone's copy): the open one if mounted here; else,
    /// with namespaces in the cluster's store, one under the volume's lease (made current
    /// from the store; `busy` while another node mounts the volume), whose changes are
    /// shipped and lease given back after `body`; else a temporary one.
    func withLeasedVolumeDatabase<T>(_ id: String, wait: Duration = .seconds(1),
                                     _ body: (VolumeDatabase) throws(EngineError) -> T) throws(EngineError) -> T {
        if let open = volumeDatabases.withLock({ $0[id] }) { return try body(open) }
        guard database.namespaceStore != nil else { return try body(try temporaryVolumeDatabase(id)) }
        let vdb = try openVolumeDatabase(id, .leased(wait: wait))
        let result = try body(vdb)
        do { try vdb.closeMirror() } catch { throw .io("volume \(id): its namespace could not be shipped: \(error)") }
        return result
    }

    enum VolumeOpening: Equatable {
        /// Opened for one call, not kept, no lease.
        case temporary
        /// Kept open while mounted here, marked in use, under the volume's lease (with a
        /// store that keeps namespaces) and reconciled when taken over.
        case mounted
        /// Opened for one piece of work under the volume's lease (`withLeasedVolumeDatabase`),
        /// waiting at most `wait` for another node's to run out.
        case leased(wait: Duration)
    }

    /// The open database of the volume, or a new connection (under the volume's lock in
    /// `volumeOpening`, so two never migrate one file at once), remembered if `.mounted`. A
    /// mounted volume is recorded as in use (durably, before any of its objects can change),
    /// so that a crash while it is open sends start-up to reconcile it.
    private func openVolumeDatabase(_ id: String, _ opening: VolumeOpening) throws(EngineError) -> VolumeDatabase {
        if let open = volumeDatabases.withLock({ $0[id] }) { return open }
        return try volumeOpening.withLock(id) { () throws(EngineError) -> VolumeDatabase in
            if let raced = volumeDatabases.withLock({ $0[id] }) { return raced }
            if opening == .mounted { try EngineError.wrap { try database.markInUse(volumeID: id) } }
            // With namespaces kept in the cluster's store: under the volume's lease, the local
            // file made the store's copy if another node wrote it since.
            var acquireWait: Duration?
            if case .leased(let wait) = opening { acquireWait = wait }
            let mirror = opening == .temporary ? nil : database.namespaceStore.map {
                NamespaceMirror.Settings(store: $0, holder: configuration.nodeName, ttl: configuration.leaseTTL, acquireWait: acquireWait)
            }
            let opened = try EngineError.wrap {
                do {
                    return try VolumeDatabase(path: volumesDirectory + "/" + id + ".sqlite", volumeID: id, mirror: mirror)
                } catch let held as NamespaceLeaseHeld { throw EngineError.busy("\(held)") }
            }
            // Whoever had it last may have died mid-write: its objects caught so are settled or
            // collected, and the index made exact, from the copy this node now holds the lease of.
            if opening == .mounted, mirror != nil, let record = try EngineError.wrap({ try database.volume(id: id) }), record.state == .available {
                try reconcile(record, opened, open: true)
            }
            if opening == .mounted { volumeDatabases.withLock { $0[id] = opened } }
            return opened
        }
    }

    /// Lets go of a volume's open database once nothing uses it (its mount ended): its
    /// index changes are committed and its usage recorded, and then it is no longer in use
    /// (under the volume's lock in `volumeOpening`, so an open racing with it marks it in
    /// use again after). With namespaces in the cluster's store, what is left is shipped
    /// and the lease given back, so another node may mount the volume at once; `keepLease`:
    /// the mount lives on without this daemon (its keeper holds the session for the next
    /// one, which takes the lease back at once), so no other node may take it meanwhile.
    /// If the store cannot take the last changes, the volume stays open here (its lease
    /// renewed, its shipments retried) and closing is tried again every few seconds.
    public func closeVolume(_ id: String, keepLease: Bool = false) {
        let shipped = volumeOpening.withLock(id) { () -> Bool in
            guard let vdb = volumeDatabases.withLock({ $0[id] }) else { return true }
            if vdb.mirror != nil {
                do {
                    try vdb.settleDeferred()
                    try vdb.closeMirror(release: !keepLease)
                } catch {
                    // Fenced: nothing of it may land any more; anything else: try again.
                    guard let mirror = vdb.mirror, mirror.isFenced else { return false }
                    _ = mirror.close()
                }
            }
            volumeDatabases.withLock { _ = $0.removeValue(forKey: id) }
            closeVolumeLocked(id, vdb)
            return true
        }
        if !shipped {
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(3)) { [weak self] in self?.closeVolume(id, keepLease: keepLease) }
        }
    }

    private func closeVolumeLocked(_ id: String, _ vdb: VolumeDatabase) {
        guard let record = try? database.volume(id: id), let entry = state.withLock({ $0.classes[record.className] }),
              let usage = try? Self.measure(vdb, entry) else { return }
        usageTable.setUsage(id, usage)
        // Anything left unsaid keeps the volume in use: the next start reconciles it.
        guard (try? vdb.settleDeferred()) != nil, (try? index.flush()) != nil else { return }
        try? database.commit([.saveUsage(VolumeUsageRecord(volumeID: id, storedBytes: usage.storedBytes, liveBytes: usage.liveBytes)),
                              .clearInUse(volumeID: id)])
    }

    static func measure(_ vdb: VolumeDatabase, _ entry: ClassEntry) throws(EngineError) -> VolumeUsage {
        let c = entry.storageClass
        let (k, alignment): (Int, Int) = {
            if case .erasure(let rs) = entry.codec.scheme { return (rs.k, ReedSolomon.alignment) }
            return (1, 1)
        }()
        return try EngineError.wrap {
            VolumeUsage(className: c.name, storedBytes: try vdb.storedBytes(width: c.rule.width, k: k, alignment: alignment, headerBytes: ShardHeader.size,
                                                                                   blockSize: ShardHeader.blockSize),
                        liveBytes: try vdb.liveBytes())
        }
    }

    /// A volume's usage: measured again if it is open and has changed since, else as last
    /// measured.
    func usage(of volumeID: String, _ entry: ClassEntry) throws(EngineError) -> VolumeUsage {
        if let open = volumeDatabases.withLock({ $0[volumeID] }) {
            let writes = open.writesEnded
            if let known = usageTable.usage(volumeID), known.writes == writes { return known }
            var usage = try Self.measure(open, entry)
            usage.writes = writes
            usageTable.setUsage(volumeID, usage)
            return usage
        }
        if let known = usageTable.usage(volumeID) { return known }
        let usage = try Self.measure(try temporaryVolumeDatabase(volumeID), entry)
        usageTable.setUsage(volumeID, usage)
        return usage
    }

    /// A class's volumes added up: provisioned bytes, bytes their live objects store on
    /// devices, and their data. Open volumes that changed are measured again first; the
    /// others are known. Costs what is open, not how many volumes exist.
    func classTotals(_ entry: ClassEntry) -> VolumeUsageTable.Totals {
        let name = entry.storageClass.name
        for id in volumeDatabases.withLock({ Array($0.keys) }) {
            guard let known = usageTable.className(id) ?? (try? database.volume(id: id))??.className, known == name else { continue }
            _ = try? usage(of: id, entry)
        }
        var totals = usageTable.totals(className: name)
        // Each volume counts every object it holds; one that several hold (snapshots,
        // clones) is on the devices once, and one only snapshots hold is in no volume's
        // figure: corrected here, at a cost that follows the shared objects.
        if !sharingHolders.withLock({ $0.isEmpty }), let shared = try? database.sharedCorrection(poolID: entry.poolID) {
            totals.storedBytes = max(0, totals.storedBytes + shared.shardBytes * Int64(entry.storageClass.rule.width))
            totals.liveBytes = max(0, totals.liveBytes + shared.sizeBytes)
        }
        return totals
    }

    static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// What an engine does for the cluster.
public enum EngineRole: String, Sendable {
    /// Everything: the cluster state's writer (classes, devices, epochs, the mover, health,
    /// recovery after a stop) and this node's mounts. The embedded default, and a cluster's
    /// controller.
    case all
    /// A node of a cluster whose state is in PostgreSQL: mounts volumes (their namespaces
    /// under leases) and writes their objects by the map the controller made, which it
    /// reads again every few seconds (`refreshClusterState`); it never changes the map,
    /// classes or devices, and takes no controller lock.
    case node
}

/// Settings of one engine.
public struct EngineConfiguration: Sendable {
    /// Where `cluster.sqlite`, `volumes/` and (by default) `devices/` live.
    public var stateDirectory: String
    /// This node's id, part of every object id it makes.
    public var nodeID: UInt16
    /// A class is full when its first device reaches this fraction of its capacity.
    public var fullRatio: Double
    /// Capacity reports warn from this fraction on.
    public var nearFullRatio: Double
    /// The node's movement budget in bytes per second (nil: unlimited); with
    /// `adaptiveMoverBudget`, the ceiling of the adapting one.
    public var moverBytesPerSecond: Int64?
    /// The mover's rate follows client latency (`RebuildBudget`): it slows down when clients'
    /// p99 rises past 1.5x what it is without movement, and speeds up while it does not.
    public var adaptiveMoverBudget = true
    /// Movement jobs (PG positions) in flight at once.
    public var moverConcurrency: Int
    /// How long object index changes may wait to be committed together (readers of the
    /// index commit them at once).
    public var objectIndexWindowMs: Int
    /// Opens devices served by other hosts' node agents (`DeviceSpec.agent`); nil: local
    /// devices only, and a cluster database naming remote devices is refused.
    public var connector: (any DeviceConnector)?
    /// Where the cluster state lives (`--metadata`); nil: `cluster.sqlite` in the state
    /// directory. Each volume's database stays in `volumes/` under the state directory; with
    /// a store that keeps namespaces (PostgreSQL), it is this node's working copy of it.
    public var metadata: MetadataLocation?
    /// This node's name: the holder of the leases of the volumes it mounts (stable across
    /// its restarts, different from every other node's).
    public var nodeName: String
    /// How long a volume's lease runs without renewal (with a store that keeps namespaces):
    /// the longest another node waits to mount a volume whose node died.
    public var leaseTTL: Duration = .seconds(6)
    /// What this engine does for the cluster (`EngineRole`).
    public var role: EngineRole = .all
    /// Whether a controller on PostgreSQL takes the controller lock (one leader per
    /// database). Off only where one process opens the same cluster state twice on purpose
    /// (tests), as SQLite allows.
    public var controllerLock = true
    /// A controller on PostgreSQL that finds another leading: wait for the lead (`standby`,
    /// told once why) rather than fail; `lost`: told if another takes the lead later. nil:
    /// fail at once.
    public var leadership: Leadership?

    public struct Leadership: Sendable {
        public var standby: @Sendable (String) -> Void
        public var lost: @Sendable () -> Void

        public init(standby: @escaping @Sendable (String) -> Void, lost: @escaping @Sendable () -> Void) {
            self.standby = standby
            self.lost = lost
        }
    }

    public init(stateDirectory: String, nodeID: UInt16 = 1, fullRatio: Double = 0.95, nearFullRatio: Double = 0.85,
                moverBytesPerSecond: Int64? = nil, moverConcurrency: Int = 2, objectIndexWindowMs: Int = 50) {
        self.stateDirectory = stateDirectory
        self.nodeID = nodeID
        self.nodeName = "node-\(nodeID)"
        self.fullRatio = fullRatio
        self.nearFullRatio = nearFullRatio
        self.moverBytesPerSecond = moverBytesPerSecond
        self.moverConcurrency = max(1, moverConcurrency)
        self.objectIndexWindowMs = max(1, objectIndexWindowMs)
    }
}
