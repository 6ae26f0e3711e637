// Owns the one MobileNode of the app: made from the app's support directory, started when the
// app is active or iOS wakes it for background work, stopped when it is suspended; tells the
// node when the network comes and goes (NWPathMonitor). The UI (App/) observes `lines`.
import Foundation
import Network

@MainActor
public final class NodeController: ObservableObject {
    @Published public private(set) var lines: [String] = []
    private let node: MobileNode
    private let monitor = NWPathMonitor()

    public init(name: String) throws {
        let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("openclaw-node", isDirectory: true)
        let listener = Listener()
        node = try MobileNode(
            stateDir: dir.path,
            settings: NodeSettings(name: name, minBackoffMs: 1000, maxBackoffMs: 60000, wakeable: true),
            capabilities: ShellCapabilities(camera: PhoneCamera(), location: PhoneLocation(),
                                            notifications: PhoneNotifications(), speech: PhoneSpeech(),
                                            deviceInfo: PhoneDeviceInfo()),
            secrets: KeychainSecrets(),
            events: listener)
        listener.controller = self
        monitor.pathUpdateHandler = { [weak self] path in
            self?.node.networkChanged(available: path.status == .satisfied)
        }
        monitor.start(queue: .global(qos: .utility))
    }

    /// Off the main thread: start and stop wait for the node's runtime.
    public func start() { DispatchQueue.global().async { try? self.node.start() } }
    public func stop() { DispatchQueue.global().async { self.node.stop() } }

    /// Pairs by the 6-digit code the gateway shows (`openclaw nodes pair --listen`).
    public func pair(gateway: String, code: String) async throws -> GatewayInfo {
        let node = self.node
        return try await Task.detached { try node.pair(gateway: gateway, code: code) }.value
    }

    public func status() -> NodeStatus { node.status() }

    fileprivate func show(_ line: String) { lines.append(line) }
}

/// Events come on the node's thread: hop to the main actor, never call the node back here.
private final class Listener: NodeEventListener, @unchecked Sendable {
    weak var controller: NodeController?

    func onEvent(event: NodeEvent) throws {
        let line: String
        switch event {
        case let .connecting(gateway): line = "connecting to \(gateway)"
        case let .connected(gateway): line = "connected to \(gateway)"
        case let .paired(gateway, name, _): line = "paired with \(name) at \(gateway)"
        case let .invoked(method, ok, error): line = ok ? "\(method) served" : "\(method) failed: \(error ?? "")"
        case let .disconnected(gateway, reason): line = "disconnected from \(gateway): \(reason)"
        }
        Task { @MainActor [weak controller] in controller?.show(line) }
    }
}
