namespace Baton.LoadTest;

/// <summary>
/// The live line in the terminal: the mode, the stage, time, requests, successes, p99 of the last second,
/// errors and wrong session answers. Redrawn every second in a terminal; every five seconds as plain lines
/// when the output is a file or a pipe.
/// </summary>
internal sealed class ProgressDisplay : IDisposable
{
    private readonly TextWriter _console;
    private readonly string _mode;
    private readonly bool _redraw;
    private readonly Timer _timer;
    private readonly Lock _lock = new();
    private string _stage = "starting";
    private Recorder? _recorder;
    private TimeSpan _length;
    private FaultSchedule? _schedule;
    private long _started = Environment.TickCount64;
    private int _ticks;

    public ProgressDisplay(TextWriter console, string mode)
    {
        (_console, _mode) = (console, mode);
        _redraw = ReferenceEquals(console, Console.Out) && !Console.IsOutputRedirected;
        _timer = new Timer(_ => Draw(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public void Stage(string stage, Recorder? recorder, TimeSpan length, FaultSchedule? schedule = null)
    {
        lock (_lock)
        {
            (_stage, _recorder, _length, _schedule, _started) = (stage, recorder, length, schedule, Environment.TickCount64);
        }
    }

    public void Done()
    {
        lock (_lock)
        {
            _recorder = null;
            if (_redraw)
            {
                _console.WriteLine();
            }
        }
    }

    public void Dispose() => _timer.Dispose();

    private void Draw()
    {
        lock (_lock)
        {
            if (_recorder is null || (!_redraw && ++_ticks % 5 != 0))
            {
                return;
            }

            var elapsed = TimeSpan.FromMilliseconds(Environment.TickCount64 - _started);
            var timeline = _recorder.Timeline();
            var lastSecond = timeline.Count >= 2 ? timeline[^2] : null;
            var errors = timeline.Sum(s => s.Errors);
            var bad = timeline.Sum(s => s.BadSessions);
            var phase = _schedule is null ? string.Empty : $" {_schedule.PhaseAt(elapsed),-16}";
            var line = $"   {_mode} {_stage}{phase} {elapsed.TotalSeconds,4:0}/{_length.TotalSeconds:0} s  requests {_recorder.Requests,7}  ok {_recorder.Succeeded,7}  p99 {lastSecond?.P99Ms ?? 0,7:0.0} ms  errors {errors,5}  wrong sessions {bad,4}";
            _console.Write(_redraw ? "\r" + line.PadRight(Console.WindowWidth > 0 ? Math.Min(Console.WindowWidth - 1, 160) : 120) : line + Environment.NewLine);
        }
    }
}
