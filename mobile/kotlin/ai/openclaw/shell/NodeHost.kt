// The Kotlin code the Android service (mobile/android) and the JVM shell (mobile/jvm) share:
// one MobileNode from the generated bindings, its events as text, and nothing platform-bound
// (no android.* import here), so the JVM test runs the same code the phone does.
package ai.openclaw.shell

import ai.openclaw.node.GatewayInfo
import ai.openclaw.node.MobileNode
import ai.openclaw.node.NodeEvent
import ai.openclaw.node.NodeEventListener
import ai.openclaw.node.NodeSettings
import ai.openclaw.node.NodeStatus
import ai.openclaw.node.SecretStore
import ai.openclaw.node.ShellCapabilities

/** One node for the app's lifetime: the shell starts it, stops it, pairs it. */
class NodeHost(
    stateDir: String,
    name: String,
    capabilities: ShellCapabilities,
    secrets: SecretStore?,
    minBackoffMs: Long = 1000,
    maxBackoffMs: Long = 60_000,
    private val onEvent: (NodeEvent) -> Unit,
) : AutoCloseable {
    private val node: MobileNode = MobileNode(
        stateDir,
        NodeSettings(name, minBackoffMs.toULong(), maxBackoffMs.toULong(), wakeable = true),
        capabilities,
        secrets,
        object : NodeEventListener {
            // Called on the node's own thread: hand it on, never call back into the node here.
            override fun onEvent(event: NodeEvent) = this@NodeHost.onEvent(event)
        },
    )

    val deviceId: String get() = node.deviceId()

    fun start() = node.start()

    fun stop() = node.stop()

    /** Blocks up to 10 s: call it off the UI thread. Throws NodeException.* on failure. */
    fun pair(gateway: String, code: String): GatewayInfo = node.pair(gateway, code)

    fun forget(deviceId: String): Boolean = node.forgetGateway(deviceId)

    fun paired(): List<GatewayInfo> = node.pairedGateways()

    fun status(): NodeStatus = node.status()

    /** From the OS's connectivity callback: no dialing while there is no network. */
    fun networkChanged(available: Boolean) = node.networkChanged(available)

    override fun close() {
        node.stop()
        node.close()
    }
}

/** One line for a log or a notification. */
fun describe(event: NodeEvent): String = when (event) {
    is NodeEvent.Connecting -> "connecting ${event.gateway}"
    is NodeEvent.Connected -> "connected ${event.gateway}"
    is NodeEvent.Paired -> "paired ${event.gateway} ${event.deviceId} ${event.name}"
    is NodeEvent.Invoked -> "invoked ${event.method} ${if (event.ok) "ok" else "failed: ${event.error}"}"
    is NodeEvent.Disconnected -> "disconnected ${event.gateway} ${event.reason}"
}
