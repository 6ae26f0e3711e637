// The foreground service that runs the node: a persistent notification (so Android keeps the
// process and its link), the node started with the service and stopped with it, and the OS's
// connectivity callbacks passed on to the node (no dialing while there is no network).
package ai.openclaw.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.pm.ServiceInfo
import android.net.ConnectivityManager
import android.net.Network
import android.os.Build
import androidx.core.app.NotificationCompat
import androidx.lifecycle.LifecycleService
import ai.openclaw.node.ShellCapabilities
import ai.openclaw.shell.NodeHost
import ai.openclaw.shell.describe

class NodeService : LifecycleService() {
    companion object {
        /** The running node, for the pairing screen (one per process). */
        @Volatile var host: NodeHost? = null
            private set
        private const val CHANNEL = "node"
        private const val ONGOING = 1
    }

    private val network = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(n: Network) { host?.networkChanged(true) }
        override fun onLost(n: Network) { host?.networkChanged(false) }
    }

    private fun ongoing(text: String): Notification =
        NotificationCompat.Builder(this, CHANNEL).setSmallIcon(android.R.drawable.stat_sys_data_bluetooth)
            .setContentTitle("OpenClaw node").setContentText(text).setOngoing(true).build()

    override fun onCreate() {
        super.onCreate()
        val notifications = getSystemService(NotificationManager::class.java)
        notifications.createNotificationChannel(NotificationChannel(CHANNEL, "Node", NotificationManager.IMPORTANCE_LOW))
        val type = if (Build.VERSION.SDK_INT >= 29) ServiceInfo.FOREGROUND_SERVICE_TYPE_CONNECTED_DEVICE else 0
        startForeground(ONGOING, ongoing("starting"), type)
        val caps = ShellCapabilities(CameraXCamera(this, this), AndroidLocation(this), AndroidNotifications(this), AndroidSpeech(this), AndroidDeviceInfo(this))
        val node = NodeHost(filesDir.resolve("node").path, "${Build.MANUFACTURER} ${Build.MODEL}", caps, KeystoreSecrets(this)) { event ->
            // On the node's thread: only post, never call the node back from here.
            notifications.notify(ONGOING, ongoing(describe(event)))
        }
        host = node
        getSystemService(ConnectivityManager::class.java).registerDefaultNetworkCallback(network)
        Thread { node.start() }.start()
    }

    override fun onDestroy() {
        getSystemService(ConnectivityManager::class.java).unregisterNetworkCallback(network)
        host?.close()
        host = null
        super.onDestroy()
    }
}
