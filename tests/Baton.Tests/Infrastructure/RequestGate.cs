namespace Baton.Tests.Infrastructure;

/// <summary>
/// Holds a request inside an app's endpoint until the test lets it go: the endpoint calls <see cref="PassAsync"/>,
/// the test waits on <see cref="Entered"/> (the request is in), then calls <see cref="Release"/>. One use per app.
/// </summary>
internal sealed class RequestGate
{
    private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once a request marked <c>X-Test-Arrival</c> has reached the app, just before its session is looked up.</summary>
    public Task Arrived => _arrived.Task;

    public void NoteArrival() => _arrived.TrySetResult();

    /// <summary>Completes once a request has reached the gate.</summary>
    public Task Entered => _entered.Task;

    public void Release() => _released.TrySetResult();

    public async Task PassAsync(CancellationToken cancellationToken)
    {
        _entered.TrySetResult();
        await _released.Task.WaitAsync(cancellationToken);
    }
}
