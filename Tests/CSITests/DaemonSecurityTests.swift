import AdminProtocol
import CSIProtocol
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRPCCore
import Testing

/// Sockets, credentials and the metrics endpoint of the real daemon.
@Suite(.serialized) struct DaemonSecurityTests {
    @Test func socketsHaveTheirModesAndGoAwayAtShutdown() throws {
        let daemon = try RunningDaemon()
        var st = stat()
        #expect(stat(daemon.csiSocket, &st) == 0 && st.st_mode & 0o777 == 0o660)
        #expect(stat(daemon.adminSocket, &st) == 0 && st.st_mode & 0o777 == 0o600)
        daemon.stop()
        #expect(!FileManager.default.fileExists(atPath: daemon.csiSocket))
        #expect(!FileManager.default.fileExists(atPath: daemon.adminSocket))
    }

    /// Even with the socket's mode widened, a caller who is not root is refused by the
    /// kernel-reported peer credentials; root is served.
    @Test func adminSocketRefusesCallersWhoAreNotRoot() async throws {
        let daemon = try RunningDaemon()
        chmod(daemon.adminSocket, 0o666)
        chmod(daemon.root, 0o755)
        // A copy nobody can execute (the build directory may sit under a private directory).
        let tool = daemon.root + "/provisionctl"
        try FileManager.default.copyItem(atPath: RunningDaemon.binary("provisionctl"), toPath: tool)
        chmod(tool, 0o755)
        let nobody = Process()
        nobody.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        nobody.arguments = ["-u", "nobody", "--", tool, "status", "--socket", daemon.adminSocket]
        let err = Pipe()
        nobody.standardError = err
        nobody.standardOutput = FileHandle.nullDevice
        try nobody.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        nobody.waitUntilExit()
        #expect(nobody.terminationStatus != 0, "nobody was served: \(message)")
        let report = try await daemon.admin { try await $0.status(Berth_Admin_V1_Empty()) }
        #expect(report.json.contains("devices_up"))
        #expect(daemon.log().contains("refused a caller"))
    }

    @Test func metricsCountRequestsOnLocalhost() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            _ = try await c.createVolume(Requests.create("measured", bytes: 1 << 20))
            _ = await code { try await c.createVolume(Requests.create("")) }
        }
        let port = try #require(daemon.metricsPort)
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#"berth_rpc_requests_total{service="csi.v1.Controller",method="CreateVolume",code="ok"} 1"#))
        #expect(text.contains(#"method="CreateVolume",code="invalid argument"} 1"#) || text.contains(#"method="CreateVolume",code="invalidArgument"} 1"#))
        #expect(text.contains("berth_rpc_duration_seconds_bucket"))
        #expect(text.contains(#"berth_volumes{class="replicated-3"} 1"#))
        #expect(text.contains("berth_class_usable_bytes"))
        #expect(text.contains("berth_degraded_objects 0"))
        // The rebuild budget: idle, it stays at its starting 128 MB/s.
        #expect(text.contains("berth_mover_budget_bytes_per_second 128000000"))
        #expect(text.contains("berth_client_p99_baseline_seconds"))
    }
}
