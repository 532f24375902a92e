import ArgumentParser
import ClusterTLS
import Foundation

/// `provisionctl cluster`: the certificates that let daemons and node agents trust each
/// other (docs/cluster.md). Works on files only; no daemon is asked.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Cluster certificates: make the CA, issue a node's certificate.",
        subcommands: [Init.self, Cert.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the cluster CA: DIR/ca.pem (every node trusts it) and DIR/ca-key.pem (keep it with the admin).")
        @Option(help: "Where the CA goes (made if missing, mode 0700).") var dir: String
        @Flag(help: "Replace an existing CA (every node then needs a new certificate).") var force = false

        func run() async throws {
            try await Self.guarded {
                let caFile = dir + "/" + TLSDirectory.caFile
                if FileManager.default.fileExists(atPath: caFile) && !force {
                    throw Failure.badInput("\(caFile) exists; --force replaces it (and invalidates every node certificate)")
                }
                do {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    let ca = try ClusterCA.make()
                    try TLSDirectory.writeSecret(ca.keyPEM, to: dir + "/ca-key.pem")
                    try ca.certificatePEM.write(toFile: caFile, atomically: true, encoding: .utf8)
                } catch let failure as Failure { throw failure } catch {
                    throw Failure.refused("cannot make the CA in \(dir): \(error)")
                }
                emit("cluster CA: \(caFile) (key \(dir)/ca-key.pem); next: provisionctl cluster cert NODE --dir \(dir)")
            }
        }
    }

    struct Cert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue node NODE's certificate: OUT/ca.pem, OUT/node.pem, OUT/node-key.pem (the daemon's and agent's --tls-dir).")
        @Argument(help: "The node id (a DNS label, the same as the daemon's --node-id and the devices' host).") var node: String
        @Option(help: "The CA's directory (from `cluster init`).") var dir: String
        @Option(help: "Where the node's files go (default DIR/NODE).") var out: String?

        func run() async throws {
            try await Self.guarded {
                do { try NodeName.check(node) } catch { throw Failure.badInput("\(error)") }
                let target = out ?? dir + "/" + node
                let ca: ClusterCA
                do {
                    ca = try ClusterCA(certificatePEM: String(contentsOfFile: dir + "/" + TLSDirectory.caFile, encoding: .utf8),
                                       keyPEM: String(contentsOfFile: dir + "/ca-key.pem", encoding: .utf8))
                } catch {
                    throw Failure.badInput("cannot read the CA in \(dir) (make it with `provisionctl cluster init --dir \(dir)`): \(error)")
                }
                do { try TLSDirectory.write(node: node, ca: ca, to: target) } catch {
                    throw Failure.refused("cannot write \(target): \(error)")
                }
                emit("node \(node): \(target)/\(TLSDirectory.certificateFile) (use --tls-dir \(target))")
            }
        }
    }
}
