import ArgumentParser

/// `provisionctl`: the admin's tool for storage classes, devices, volumes and capacity.
/// It talks to the running daemon over the admin socket; docs/provisionctl.md has every
/// command, its JSON schema and its exit codes.
@main
struct Provisionctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provisionctl",
        abstract: "Manage a Berth cluster: storage classes, devices, volumes, capacity, what-if plans.",
        discussion: """
            Exit codes: 0 done; 1 the daemon refused or failed the request; 2 bad input found \
            before asking the daemon; 3 the daemon cannot be reached; 4 declined at the confirmation prompt.
            """,
        subcommands: [ClassCommand.self, DeviceCommand.self, PlanCommand.self, ApplyCommand.self, VolumeCommand.self, SnapshotCommand.self, MaintenanceCommand.self,
                      CapacityCommand.self, StatusCommand.self, ClusterCommand.self])
}
